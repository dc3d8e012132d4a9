"""connreq"""
__all__: list[str] = []
