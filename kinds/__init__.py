"""Channel kinds (sms, email, push): one module describes each, one registry lists them.

Ask the registry, never a list of names: ``kind("sms").address``, ``all_kinds()``. This
package imports only the standard library, so every room (the workflows included) may.
"""

from kinds.base import (
    Address,
    ChannelKind,
    DeviceTokens,
    Lesson,
    ProfileColumn,
    ProfileTrait,
    TemplateParts,
    Wording,
)
from kinds.email import EMAIL
from kinds.push import PUSH
from kinds.registry import (
    UnknownKindError,
    all_kinds,
    is_kind,
    kind,
    lesson,
    names,
    one_of,
    register,
    registered,
    unregister,
)
from kinds.sms import SMS

# The built-in kinds, in the order every list of kinds shows them.
for _builtin in (SMS, EMAIL, PUSH):
    register(_builtin)

__all__ = [
    "Address",
    "ChannelKind",
    "DeviceTokens",
    "EMAIL",
    "Lesson",
    "PUSH",
    "ProfileColumn",
    "ProfileTrait",
    "SMS",
    "TemplateParts",
    "UnknownKindError",
    "Wording",
    "all_kinds",
    "is_kind",
    "kind",
    "lesson",
    "names",
    "one_of",
    "register",
    "registered",
    "unregister",
]
