"""fleet"""
__all__: list[str] = []
