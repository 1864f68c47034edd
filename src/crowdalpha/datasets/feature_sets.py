"""``features.json``: the feature sets and targets of a Classic dataset version.

Sets, as Numerai names them: ``small`` ⊂ ``medium`` ⊂ ``all``, and eight groups
(intelligence, wisdom, charisma, dexterity, strength, constitution, agility, serenity) that
partition ``all``. Membership is drawn in an order keyed by the operator secret, so it says
nothing about what a feature is, and is fixed across versions: a minor version keeps every
existing set as it was, deals its new features to the groups (smallest group first), adds them
to ``all`` and lists them in a set ``new_in_<version>``. Lists follow file column order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from crowdalpha.datasets.errors import rule_error
from crowdalpha.datasets.obfuscate import SecretKeys

GROUPS: tuple[str, ...] = (
    "intelligence",
    "wisdom",
    "charisma",
    "dexterity",
    "strength",
    "constitution",
    "agility",
    "serenity",
)
DEFAULT_SET_SHARES: Mapping[str, float] = {"small": 0.1, "medium": 1 / 3}
"""Share of all features in each nested set (``small`` ⊂ ``medium``); each holds at least MIN_SET_SIZE."""
MIN_SET_SIZE = 5
RESERVED = ("all", *GROUPS)


def set_size(share: float, n_features: int) -> int:
    """Return the size of a nested set with this share: ⌈share·n⌉, at least MIN_SET_SIZE, at most n."""
    return min(n_features, max(MIN_SET_SIZE, math.ceil(share * n_features)))


def classic_feature_sets(
    features: Sequence[str], keys: SecretKeys, shares: Mapping[str, float] = DEFAULT_SET_SHARES
) -> dict[str, list[str]]:
    """Return set name → public feature names (file order): nested shares, ``all``, then the 8 groups."""
    for name, share in shares.items():
        if name in RESERVED:
            raise rule_error("feature set names must not shadow 'all' or a group", f"got {name!r}")
        if not 0 < share <= 1:
            raise rule_error("a feature set share lies in (0, 1]", f"{name!r} has {share}")
    position = {name: i for i, name in enumerate(features)}

    def in_file_order(names: Sequence[str]) -> list[str]:
        return sorted(names, key=position.__getitem__)

    ranked = keys.keyed_order("feature-sets", list(features))
    sets: dict[str, list[str]] = {}
    for name, share in sorted(shares.items(), key=lambda item: item[1]):
        sets[name] = in_file_order(ranked[: set_size(share, len(features))])
    sets["all"] = list(features)
    members: dict[str, list[str]] = {group: [] for group in GROUPS}
    for i, name in enumerate(keys.keyed_order("feature-groups", list(features))):
        members[GROUPS[i % len(GROUPS)]].append(name)
    sets.update({group: in_file_order(names) for group, names in members.items()})
    return sets


def extend_feature_sets(
    sets: Mapping[str, Sequence[str]], new_features: Sequence[str], keys: SecretKeys, version: str
) -> dict[str, list[str]]:
    """Return a minor version's sets: existing ones kept, new features in all, groups, new_in_<version>."""
    extended = {name: list(members) for name, members in sets.items()}
    if not new_features:
        return extended
    extended["all"] = [*extended.get("all", []), *new_features]
    for group in GROUPS:
        extended.setdefault(group, [])
    position = {name: i for i, name in enumerate(extended["all"])}
    for name in keys.keyed_order("feature-groups", list(new_features)):
        group = min(GROUPS, key=lambda g: (len(extended[g]), GROUPS.index(g)))
        extended[group].append(name)
    for group in GROUPS:
        extended[group] = sorted(extended[group], key=position.__getitem__)
    extended[f"new_in_{version}"] = list(new_features)
    return extended


def features_document(sets: Mapping[str, Sequence[str]], targets: Sequence[str]) -> dict:
    """Return the ``features.json`` document: ``{"feature_sets": {...}, "targets": [...]}``."""
    return {"feature_sets": {name: list(members) for name, members in sets.items()}, "targets": list(targets)}
