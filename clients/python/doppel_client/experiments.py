"""A/B experiment arms from tuples or dicts."""

from __future__ import annotations

from typing import Iterable, List, Mapping, Sequence, Tuple, Union

from ._proto import experiments_pb2

# (name, model_version, weight), (name, weight) (UpdateWeights: the version stays), a dict
# with name, model_version (or version) and weight, or the Arm message.
ArmLike = Union[experiments_pb2.Arm, Tuple[str, str, int], Tuple[str, int], Mapping[str, object]]


def arm_message(arm: ArmLike) -> experiments_pb2.Arm:
    """One `Arm`."""
    if isinstance(arm, experiments_pb2.Arm):
        return arm
    if isinstance(arm, Mapping):
        fields = dict(arm)
        if "version" in fields:
            fields["model_version"] = fields.pop("version")
        unknown = set(fields) - {"name", "model_version", "weight"}
        if unknown:
            raise TypeError(f"arm: unknown keys {sorted(unknown)} (name, model_version or version, weight)")
        return experiments_pb2.Arm(**fields)
    if isinstance(arm, Sequence) and not isinstance(arm, str):
        if len(arm) == 3:
            return experiments_pb2.Arm(name=arm[0], model_version=arm[1], weight=arm[2])
        if len(arm) == 2:
            return experiments_pb2.Arm(name=arm[0], weight=arm[1])
    raise TypeError(f"arm: expected (name, version, weight), (name, weight), a dict or an Arm, got {arm!r}")


def arm_messages(arms: Iterable[ArmLike]) -> List[experiments_pb2.Arm]:
    """The arms, in order (the first is the baseline of the report's comparisons)."""
    return [arm_message(arm) for arm in arms]
