"""acs-security: a TR-069 (CWMP) ACS extension that pushes security policies to Cisco IP phone fleets."""

__all__ = ["__version__"]
__version__ = "0.1.0"
