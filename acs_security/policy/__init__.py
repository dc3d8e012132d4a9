"""policy"""
__all__: list[str] = []
