"""mapping"""
__all__: list[str] = []
