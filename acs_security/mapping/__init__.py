"""The phones' security settings as data: catalogue, validation, cfg.xml <-> TR-069.

Everything here is pure Python without I/O except reading the data files of
``datamodel/`` (see :func:`datamodel_dir`) and asking the local OpenSSL (stdlib ``ssl``)
what a cipher list selects. See docs/datamodel.md.
"""

from acs_security.mapping.catalogue import ApplicationDefaults, Catalogue, CipherFacts, ModelView, load_catalogue
from acs_security.mapping.cfgxml import CfgValue, CfgWarning, CfgXml, parse_cfgxml, render_cfgxml
from acs_security.mapping.ciphers import CipherElement, CipherExpansion
from acs_security.mapping.errors import (
    CatalogueError,
    CfgXmlError,
    InvalidValues,
    MappingError,
    UnknownModelError,
    UnknownSettingError,
    ValidationError,
)
from acs_security.mapping.firewall import FirewallOptions, parse_firewall_options
from acs_security.mapping.paths import DATAMODEL_ENV, conventional_path, datamodel_dir
from acs_security.mapping.records import ModelInfo, ParamSpec, Rule, Setting, Tr069Param
from acs_security.mapping.rules import validate_values
from acs_security.mapping.tr069 import Tr069Fault, cfgxml_to_tr069, tr069_to_cfgxml, validate_tr069
from acs_security.mapping.validators import expand_cipher_list, validate_value

__all__ = [
    "ApplicationDefaults",
    "Catalogue",
    "CatalogueError",
    "CfgValue",
    "CfgWarning",
    "CfgXml",
    "CfgXmlError",
    "CipherElement",
    "CipherExpansion",
    "CipherFacts",
    "DATAMODEL_ENV",
    "FirewallOptions",
    "InvalidValues",
    "MappingError",
    "ModelInfo",
    "ModelView",
    "ParamSpec",
    "Rule",
    "Setting",
    "Tr069Fault",
    "Tr069Param",
    "UnknownModelError",
    "UnknownSettingError",
    "ValidationError",
    "cfgxml_to_tr069",
    "conventional_path",
    "datamodel_dir",
    "expand_cipher_list",
    "load_catalogue",
    "parse_cfgxml",
    "parse_firewall_options",
    "render_cfgxml",
    "tr069_to_cfgxml",
    "validate_tr069",
    "validate_value",
    "validate_values",
]
