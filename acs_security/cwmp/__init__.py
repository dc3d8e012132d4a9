"""cwmp"""
__all__: list[str] = []
