"""Desired state: assignments (a policy bound to a selector) enforced on every session,
drift, audits (docs/decisions/0009-desired-state.md, docs/desired-state.md).

Pure cores: :mod:`keys` (ParameterKeys naming assignment and revision), :mod:`compiled`
(selection and the desired values per model and firmware), :mod:`conflicts`, :mod:`decide`
(a session's work) and :mod:`audit` (verdicts). Twisted at the edges: the session side,
the composite provisioner, the audit's session side and the assignments' refresh.
"""

__all__: list[str] = []
