"""Classic dataset versions: a market panel → ``vX.Y/`` in Numerai's layout, plus the private maps.

A version directory holds exactly what Numerai publishes for Classic (reference §3.1)::

    train.parquet  validation.parquet  live.parquet  features.json
    validation_example_preds.parquet  live_example_preds.parquet

Data files have index ``id``, then ``era`` ("0001"…), ``data_type`` ("train" / "validation" /
"live"), the int8 ``feature_*`` columns (bins 0..4, see :mod:`crowdalpha.datasets.obfuscate`) and
the float32 ``target`` / ``target_*`` columns.

**Eras and splits.** Historical eras are the weekly era dates of the panel, numbered from
"0001" in date order; the live era is the panel's latest date, numbered after them. An era is
*resolved* when its main ``target`` is known for at least one asset (its whole horizon lies in
the past). Of the resolved eras, the last ``validation_fraction`` form the validation split; the
``embargo_eras`` eras before the first validation era are published in neither split, and the
rest form the train split. The default embargo is ``ceil((h + lag) / 5)`` weekly eras for the
longest target horizon ``h`` (parsed from the ``target_<name>_<h>`` names, 60 trading days when
none is given) and the 2-day lag: 13 eras for 60-day targets, 5 for 20-day ones, so no train
target window overlaps a validation one. Eras still unresolved are not published (their
targets would be NaN). Within train and validation, rows whose main target is NaN (an asset
that stopped trading within the horizon) are dropped, so ``target`` is never NaN there; auxiliary
targets may be. Live rows carry NaN targets.

**Private outputs** go to ``private_dir/<version>/`` — never inside the published directory:
``manifest.json`` (secret fingerprint, era → date and split, raw → public feature names, build
parameters) and ``ids.parquet`` (era, data_type, id, date, asset for every published row).

**Minor versions** (``v1.1`` on top of ``v1.0``) add feature and target columns and nothing else:
every existing column, id, row and era is copied from the base version unchanged, the new
features are binned over exactly the base rows of each era, and the live file is rebuilt.

Everything is written into a temporary directory and renamed into place at the end, so a
failure leaves no partial version behind. Same panel + same secret → byte-identical files.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crowdalpha.datasets.errors import DatasetError, rule_error
from crowdalpha.datasets.example_model import RidgeExampleModel
from crowdalpha.datasets.feature_sets import (
    DEFAULT_SET_SHARES,
    classic_feature_sets,
    extend_feature_sets,
    features_document,
)
from crowdalpha.datasets.obfuscate import (
    LIVE,
    TARGET_COLUMN,
    ObfuscatedEra,
    SecretKeys,
    date_slices,
    equal_frequency_bins,
    era_rows,
    id_strings,
    id_tag,
    obfuscate_era,
    obfuscate_eras,
    raw_feature_columns,
    target_columns,
    validate_era_frame,
)
from crowdalpha.datasets.parquet import (
    ID_COLUMN,
    ROW_GROUP_ROWS,
    ClassicFileWriter,
    EraChunkWriter,
    frame_schema,
    iter_eras,
    predictions_schema,
    read_json,
    write_json,
    write_table,
)
from crowdalpha.datasets.staging import staged_directories

TRAIN = "train"
VALIDATION = "validation"
EMBARGO = "embargo"
UNRESOLVED = "unresolved"
SPLITS: tuple[str, ...] = (TRAIN, VALIDATION, LIVE)
DEFAULT_VALIDATION_FRACTION = 0.25
TARGET_LAG_DAYS = 2
TRADING_DAYS_PER_ERA = 5
DEFAULT_HORIZON_DAYS = 60
FEATURES_JSON = "features.json"
PRIVATE_MANIFEST = "manifest.json"
PRIVATE_IDS = "ids.parquet"
VERSION_PATTERN = re.compile(r"^v(\d+)\.(\d+)$")
PUBLISHED_FILES: tuple[str, ...] = (
    "train.parquet",
    "validation.parquet",
    "live.parquet",
    FEATURES_JSON,
    "validation_example_preds.parquet",
    "live_example_preds.parquet",
)

Progress = Callable[[str, int, int | None], None]
"""Called as ``progress(stage, completed, total)``; ``total`` is None while unknown."""


# --------------------------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class EraPlan:
    """One era of a version: its public label, private date, and where it goes."""

    era: str
    date: str
    data_type: str
    """train, validation, live — or embargo / unresolved for eras published in neither split."""


@dataclass(frozen=True)
class SplitPlan:
    """The eras of a version and the split rules that placed them."""

    eras: tuple[EraPlan, ...]
    horizon_days: int
    embargo_eras: int

    def of(self, data_type: str) -> list[EraPlan]:
        """Return the eras of one data type, in date order."""
        return [era for era in self.eras if era.data_type == data_type]


@dataclass
class BuildReport:
    """What a build wrote: counts per split, sizes, timings (seconds), and where the private maps went."""

    version: str
    version_dir: Path
    private_dir: Path
    base_version: str | None
    features: int
    new_features: int
    targets: list[str]
    eras: dict[str, int]
    rows: dict[str, int]
    live_era: str
    embargo_eras: int
    horizon_days: int
    files: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def version_number(version: str) -> tuple[int, int]:
    """Return (major, minor) of a version name ``vX.Y``; raise DatasetError otherwise."""
    match = VERSION_PATTERN.match(version)
    if not match:
        raise rule_error("a version is named vMAJOR.MINOR (e.g. v1.0)", f"got {version!r}")
    return int(match.group(1)), int(match.group(2))


def era_label(number: int) -> str:
    """Return the public label of the era with 1-based ``number``: zero-padded to 4 digits."""
    return f"{number:04d}"


def horizon_days(targets: Sequence[str]) -> int:
    """Return the longest target horizon in trading days, parsed from ``target_<name>_<h>`` (default 60)."""
    horizons = [int(m.group(1)) for name in targets if (m := re.search(r"_(\d+)$", name))]
    return max(horizons, default=DEFAULT_HORIZON_DAYS)


def required_embargo_eras(horizon: int, lag: int = TARGET_LAG_DAYS) -> int:
    """Return how many weekly eras a target window of ``horizon`` days after ``lag`` days spans."""
    return math.ceil((horizon + lag) / TRADING_DAYS_PER_ERA)


def plan_splits(
    history: Sequence[str],
    resolved: Sequence[bool],
    live_date: str,
    *,
    targets: Sequence[str],
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    embargo_eras: int | None = None,
) -> SplitPlan:
    """Return the era plan: numbered weekly eras as train / embargo / validation / unresolved, then live."""
    if not 0 < validation_fraction < 1:
        raise rule_error("validation_fraction lies strictly between 0 and 1", f"got {validation_fraction}")
    horizon = horizon_days(targets)
    minimum = math.ceil(horizon / TRADING_DAYS_PER_ERA)
    embargo = required_embargo_eras(horizon) if embargo_eras is None else int(embargo_eras)
    if embargo < minimum:
        raise rule_error(
            "the embargo must cover the target horizon in eras",
            f"{embargo} era(s) < {minimum} for {horizon}-day targets "
            f"(default: {required_embargo_eras(horizon)})",
        )
    numbered = list(enumerate(history, start=1))
    resolved_numbers = [number for (number, _), known in zip(numbered, resolved, strict=True) if known]
    n_validation = max(1, round(len(resolved_numbers) * validation_fraction))
    if len(resolved_numbers) < n_validation + embargo + 1:
        raise rule_error(
            "the history must hold a train era, the embargo and a validation split",
            f"{len(resolved_numbers)} resolved era(s) < 1 + {embargo} embargo + {n_validation} validation "
            f"(history: {len(history)} weekly era(s); targets need {horizon} trading days to resolve)",
        )
    first_validation = resolved_numbers[-n_validation]
    last_validation = resolved_numbers[-1]
    known = set(resolved_numbers)
    eras = []
    for number, date in numbered:
        if number > last_validation or number not in known:
            kind = UNRESOLVED
        elif number >= first_validation:
            kind = VALIDATION
        elif number >= first_validation - embargo:
            kind = EMBARGO
        else:
            kind = TRAIN
        eras.append(EraPlan(era_label(number), date, kind))
    eras.append(EraPlan(era_label(len(history) + 1), live_date, LIVE))
    return SplitPlan(eras=tuple(eras), horizon_days=horizon, embargo_eras=embargo)


# --------------------------------------------------------------------------------------- locations


def _inside(path: Path, parent: Path) -> bool:
    try:
        path.resolve().relative_to(parent.resolve())
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------------ writing


def _private_ids_schema() -> pa.Schema:
    fields = [(name, pa.string()) for name in ("era", "data_type", ID_COLUMN, "date", "asset")]
    return frame_schema(fields, index=None)


def _private_rows(era: str, data_type: str, ids: pa.Array, date: str, assets: np.ndarray) -> pa.Table:
    rows = len(ids)
    return pa.Table.from_arrays(
        [
            pa.array([era] * rows, pa.string()),
            pa.array([data_type] * rows, pa.string()),
            ids,
            pa.array([date] * rows, pa.string()),
            pa.array([str(a) for a in assets], pa.string()),
        ],
        schema=_private_ids_schema(),
    )


@dataclass
class _Outputs:
    """The writers and accumulators shared by every era of a build."""

    public: Path
    private: Path
    features: list[str]
    targets: list[str]
    small: list[int]
    row_group_rows: int
    progress: Progress | None
    model: RidgeExampleModel = field(init=False)
    predictions: dict[str, list[tuple[pa.Array, np.ndarray]]] = field(init=False)
    rows: dict[str, int] = field(init=False)
    eras: dict[str, int] = field(init=False)
    ids_writer: EraChunkWriter = field(init=False)
    all_ids: list[pa.Array] = field(init=False)

    def __post_init__(self) -> None:
        self.all_ids = []
        self.model = RidgeExampleModel(len(self.small))
        self.predictions = {VALIDATION: [], LIVE: []}
        self.rows = dict.fromkeys(SPLITS, 0)
        self.eras = dict.fromkeys(SPLITS, 0)
        self.ids_writer = EraChunkWriter(
            self.private / PRIVATE_IDS, _private_ids_schema(), row_group_rows=self.row_group_rows
        )

    def split_writer(self, data_type: str) -> ClassicFileWriter:
        return ClassicFileWriter(
            self.public / f"{data_type}.parquet",
            self.features,
            self.targets,
            row_group_rows=self.row_group_rows,
        )

    def write_era(
        self,
        writer: ClassicFileWriter,
        plan: EraPlan,
        ids: pa.Array,
        features: np.ndarray,
        targets: np.ndarray,
        assets: np.ndarray,
    ) -> None:
        kind = plan.data_type
        writer.write_era(plan.era, kind, ids, features, targets)
        self.ids_writer.write(_private_rows(plan.era, kind, ids, plan.date, assets))
        small = features[self.small]
        if kind == TRAIN:
            self.model.add_era(small, targets[0])
        else:
            self.predictions[kind].append((ids, self.model.predict_era(small)))
        self.rows[kind] += len(ids)
        self.eras[kind] += 1
        self.all_ids.append(ids)

    def check_ids_unique(self) -> None:
        """Raise DatasetError unless every id of the version is distinct (eras and files included)."""
        ids = pa.chunked_array(self.all_ids, type=pa.string())
        distinct = pc.count_distinct(ids).as_py()
        if distinct != len(ids):
            counts = pc.value_counts(ids)
            repeated = [v["values"] for v in counts.to_pylist() if v["counts"] > 1][:3]
            raise rule_error("ids must be unique across the version", f"repeated: {repeated}")

    def finish_split(self, data_type: str) -> None:
        if data_type == TRAIN:
            self.model.fit()

    def write_predictions(self) -> None:
        for kind in (VALIDATION, LIVE):
            pieces = self.predictions[kind]
            ids = pa.concat_arrays([p[0] for p in pieces]) if pieces else pa.array([], pa.string())
            values = np.concatenate([p[1] for p in pieces]) if pieces else np.zeros(0)
            table = pa.Table.from_arrays([pa.array(values, pa.float64()), ids], schema=predictions_schema())
            write_table(self.public / f"{kind}_example_preds.parquet", table)

    def __enter__(self) -> _Outputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.ids_writer.__exit__(*exc)

    def tick(self, stage: str, done: int, total: int | None) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)


def _resolved_history(frame: pd.DataFrame, slices: Mapping[str, slice], history: Sequence[str]) -> list[bool]:
    known = frame[TARGET_COLUMN].notna().to_numpy()
    return [bool(known[slices[date]].any()) for date in history]


def _live_date(dates: Sequence[str], live_date: str | pd.Timestamp | None) -> str:
    latest = dates[-1]
    if live_date is None:
        return latest
    wanted = pd.Timestamp(live_date).strftime("%Y-%m-%d")
    if wanted != latest:
        raise rule_error(
            "the live date is the latest date of the input", f"asked {wanted}, latest is {latest}"
        )
    return wanted


def _write_eras(
    outputs: _Outputs,
    frame: pd.DataFrame,
    slices: Mapping[str, slice],
    plans: Sequence[EraPlan],
    raw_order: Sequence[str],
    keys: SecretKeys,
    workers: int | None,
) -> None:
    """Obfuscate and write one split's eras from the era frame (all features recomputed)."""
    if not plans:
        return
    kind = plans[0].data_type
    by_era = {plan.era: plan for plan in plans}
    rows = (
        era_rows(
            frame.iloc[slices[plan.date]],
            era=plan.era,
            date=plan.date,
            data_type=kind,
            features=raw_order,
            targets=[] if kind == LIVE else outputs.targets,
            require=None if kind == LIVE else TARGET_COLUMN,
        )
        for plan in plans
    )
    with outputs.split_writer(kind) as writer:
        for done, era in enumerate(obfuscate_eras(rows, keys, workers=workers), start=1):
            targets = era.targets
            if kind == LIVE:
                targets = np.full((len(outputs.targets), era.rows), np.nan, dtype=np.float32)
            outputs.write_era(writer, by_era[era.era], id_strings(era.ids), era.features, targets, era.assets)
            outputs.tick(f"obfuscate {kind}", done, len(plans))
    outputs.finish_split(kind)


def _manifest(
    version: str,
    keys: SecretKeys,
    layout: _Layout,
    outputs: _Outputs,
    *,
    base_version: str | None,
    validation_fraction: float | None,
) -> dict:
    plan = layout.plan
    return {
        "tournament": "classic",
        "version": version,
        "base_version": base_version,
        "secret_fingerprint": keys.fingerprint,
        "horizon_days": plan.horizon_days,
        "embargo_eras": plan.embargo_eras,
        "validation_fraction": validation_fraction,
        "eras": [{"era": e.era, "date": e.date, "data_type": e.data_type} for e in plan.eras],
        "features": {raw: layout.names[raw] for raw in layout.raw_order},
        "targets": list(layout.targets),
        "rows": outputs.rows,
    }


def _report(
    version: str,
    out_dir: Path,
    private_dir: Path,
    plan: SplitPlan,
    outputs: _Outputs,
    *,
    base_version: str | None,
    new_features: int,
    seconds: dict[str, float],
) -> BuildReport:
    version_dir = out_dir / version
    files = {name: (version_dir / name).stat().st_size for name in PUBLISHED_FILES}
    eras = {**outputs.eras, EMBARGO: len(plan.of(EMBARGO)), UNRESOLVED: len(plan.of(UNRESOLVED))}
    return BuildReport(
        version=version,
        version_dir=version_dir,
        private_dir=private_dir / version,
        base_version=base_version,
        features=len(outputs.features),
        new_features=new_features,
        targets=list(outputs.targets),
        eras=eras,
        rows=dict(outputs.rows),
        live_era=plan.of(LIVE)[0].era,
        embargo_eras=plan.embargo_eras,
        horizon_days=plan.horizon_days,
        files=files,
        seconds=seconds,
    )


def write_classic_version(
    era_frame: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    *,
    version: str = "v1.0",
    secret: bytes,
    private_dir: str | os.PathLike[str],
    live_date: str | pd.Timestamp | None = None,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    embargo_eras: int | None = None,
    feature_sets: Mapping[str, float] = DEFAULT_SET_SHARES,
    base_version_dir: str | os.PathLike[str] | None = None,
    base_private_dir: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
    progress: Progress | None = None,
) -> BuildReport:
    """Return the report of writing ``out_dir/<version>/`` (and ``private_dir/<version>/``) from an era frame.

    The era frame has one row per (date, asset) for the weekly era dates plus the live date (its
    latest date): ``date``, ``asset``, ``raw_*`` features and binned ``target`` / ``target_*``.
    With ``base_version_dir`` the version is a minor version of that base (see the module doc);
    the base's private maps are read from ``base_private_dir`` (default ``private_dir/<base name>``).
    """
    clock = time.perf_counter()
    seconds: dict[str, float] = {}
    keys = SecretKeys(secret)
    major, minor = version_number(version)
    out_dir, private_dir = Path(out_dir), Path(private_dir)
    if _inside(private_dir, out_dir) or _inside(out_dir, private_dir):
        raise rule_error(
            "private outputs must live outside the published directory",
            f"--private-dir {private_dir} and --out {out_dir} overlap",
        )
    frame = validate_era_frame(era_frame)
    targets = target_columns(frame)
    if TARGET_COLUMN not in targets:
        raise rule_error("a main 'target' column is required", f"target columns found: {targets}")
    slices = date_slices(frame)
    dates = list(slices)
    live = _live_date(dates, live_date)
    history = [d for d in dates if d < live]
    seconds["validate"] = time.perf_counter() - clock

    with staged_directories([out_dir / version, private_dir / version]) as (public, private):
        if base_version_dir is None:
            base = None
            layout = _fresh_layout(
                frame, slices, history, live, targets, keys, validation_fraction, embargo_eras, feature_sets
            )
        else:
            base = _BaseVersion.load(
                Path(base_version_dir), base_private_dir, private_dir, keys, (major, minor)
            )
            layout = base.layout(frame, live, targets, keys, version)
        small = _positions(layout.public_names, layout.sets["small"])
        with _Outputs(
            public, private, layout.public_names, layout.targets, small, row_group_rows, progress
        ) as outputs:
            for kind in (TRAIN, VALIDATION):
                if base is None:
                    _write_eras(outputs, frame, slices, layout.plan.of(kind), layout.raw_order, keys, workers)
                else:
                    base.extend_split(outputs, kind, frame, slices, layout.new_raw, keys)
            _write_eras(outputs, frame, slices, layout.plan.of(LIVE), layout.raw_order, keys, workers)
            outputs.check_ids_unique()
            outputs.write_predictions()
        seconds["obfuscate"] = time.perf_counter() - clock - seconds["validate"]
        write_json(public / FEATURES_JSON, features_document(layout.sets, layout.targets))
        write_json(
            private / PRIVATE_MANIFEST,
            _manifest(
                version,
                keys,
                layout,
                outputs,
                base_version=base.name if base else None,
                validation_fraction=None if base else validation_fraction,
            ),
        )
        outputs.tick("finish", 1, 1)
    seconds["total"] = time.perf_counter() - clock
    return _report(
        version,
        out_dir,
        private_dir,
        layout.plan,
        outputs,
        base_version=base.name if base else None,
        new_features=len(layout.new_raw),
        seconds=seconds,
    )


@dataclass(frozen=True)
class _Layout:
    """What a version holds: its eras, its columns in file order, its feature sets."""

    plan: SplitPlan
    names: dict[str, str]
    """raw name → public name (private)."""
    raw_order: list[str]
    """raw feature columns in file order."""
    new_raw: list[str]
    """raw feature columns this version adds (all of them for a fresh version)."""
    sets: dict[str, list[str]]
    targets: list[str]

    @property
    def public_names(self) -> list[str]:
        return [self.names[raw] for raw in self.raw_order]


def _fresh_layout(
    frame: pd.DataFrame,
    slices: Mapping[str, slice],
    history: Sequence[str],
    live: str,
    targets: list[str],
    keys: SecretKeys,
    validation_fraction: float,
    embargo_eras: int | None,
    feature_sets: Mapping[str, float],
) -> _Layout:
    """Return the layout of a version built from scratch: features in public-name order."""
    plan = plan_splits(
        history,
        _resolved_history(frame, slices, history),
        live,
        targets=targets,
        validation_fraction=validation_fraction,
        embargo_eras=embargo_eras,
    )
    names = keys.feature_names(raw_feature_columns(frame))
    raw_order = sorted(names, key=names.__getitem__)
    sets = classic_feature_sets([names[raw] for raw in raw_order], keys, feature_sets)
    return _Layout(plan=plan, names=names, raw_order=raw_order, new_raw=raw_order, sets=sets, targets=targets)


def _positions(names: Sequence[str], subset: Sequence[str]) -> list[int]:
    index = {name: i for i, name in enumerate(names)}
    return [index[name] for name in subset]


# ---------------------------------------------------------------------------------- minor versions


@dataclass
class _BaseVersion:
    """A published version and its private maps, as a minor version reads them."""

    name: str
    directory: Path
    manifest: dict
    feature_sets: dict[str, list[str]]
    targets: list[str]
    rows: dict[str, tuple[pa.Array, np.ndarray]]
    """era → (published ids, assets) of the base's train and validation rows."""

    @property
    def features(self) -> list[str]:
        return list(self.feature_sets["all"])

    @classmethod
    def load(
        cls,
        directory: Path,
        base_private_dir: str | os.PathLike[str] | None,
        private_dir: Path,
        keys: SecretKeys,
        number: tuple[int, int],
    ) -> _BaseVersion:
        name = directory.name
        base_major, base_minor = version_number(name)
        if number[0] != base_major or number[1] <= base_minor:
            raise rule_error(
                "a minor version keeps the major number and raises the minor one",
                f"v{number[0]}.{number[1]} cannot extend {name}",
            )
        private = Path(base_private_dir) if base_private_dir is not None else private_dir / name
        missing = [
            p
            for p in (directory / FEATURES_JSON, private / PRIVATE_MANIFEST, private / PRIVATE_IDS)
            if not p.exists()
        ]
        if missing:
            raise rule_error(
                "a minor version needs its base version and the base's private maps", f"missing {missing}"
            )
        manifest = read_json(private / PRIVATE_MANIFEST)
        if manifest.get("secret_fingerprint") != keys.fingerprint:
            raise rule_error(
                "a minor version uses the secret of its base version", "the secret's fingerprint differs"
            )
        document = read_json(directory / FEATURES_JSON)
        ids = pq.read_table(private / PRIVATE_IDS, columns=["era", "data_type", ID_COLUMN, "asset"])
        rows: dict[str, tuple[pa.Array, np.ndarray]] = {}
        keep = pc.not_equal(ids.column("data_type"), LIVE)
        ids = ids.filter(keep)
        for era, table in _split_by_era(ids):
            rows[era] = (
                table.column(ID_COLUMN).combine_chunks(),
                table.column("asset").to_numpy(zero_copy_only=False),
            )
        return cls(
            name=name,
            directory=directory,
            manifest=manifest,
            feature_sets={k: list(v) for k, v in document["feature_sets"].items()},
            targets=list(document["targets"]),
            rows=rows,
        )

    def layout(
        self, frame: pd.DataFrame, live: str, targets: list[str], keys: SecretKeys, version: str
    ) -> _Layout:
        """Return the minor version's layout: the base's eras, columns and sets, then what it adds."""
        eras = [
            EraPlan(e["era"], e["date"], e["data_type"])
            for e in self.manifest["eras"]
            if e["data_type"] != LIVE
        ]
        history_end = max((e.date for e in eras), default="")
        if live <= history_end:
            raise rule_error(
                "the live date of a minor version comes after the base's history",
                f"live {live} ≤ last base era date {history_end}",
            )
        eras.append(EraPlan(era_label(len(eras) + 1), live, LIVE))
        plan = SplitPlan(
            eras=tuple(eras),
            horizon_days=int(self.manifest["horizon_days"]),
            embargo_eras=int(self.manifest["embargo_eras"]),
        )
        base_names: dict[str, str] = self.manifest["features"]
        raw = raw_feature_columns(frame)
        absent = [r for r in base_names if r not in raw]
        if absent:
            raise rule_error(
                "a minor version needs every raw feature of its base (the live file is rebuilt)",
                f"missing {absent[:5]}",
            )
        new_raw = [r for r in raw if r not in base_names]
        new_names = keys.feature_names(new_raw, taken=base_names.values())
        new_raw = sorted(new_raw, key=new_names.__getitem__)
        by_public = {public: raw_name for raw_name, public in base_names.items()}
        raw_order = [by_public[public] for public in self.features] + new_raw
        sets = extend_feature_sets(self.feature_sets, [new_names[r] for r in new_raw], keys, version)
        return _Layout(
            plan=plan,
            names={**base_names, **new_names},
            raw_order=raw_order,
            new_raw=new_raw,
            sets=sets,
            targets=[*self.targets, *(t for t in targets if t not in self.targets)],
        )

    def extend_split(
        self,
        outputs: _Outputs,
        kind: str,
        frame: pd.DataFrame,
        slices: Mapping[str, slice],
        new_raw: Sequence[str],
        keys: SecretKeys,
    ) -> None:
        """Copy one base split era by era, appending the new feature and target columns."""
        plans = {e["era"]: EraPlan(e["era"], e["date"], e["data_type"]) for e in self.manifest["eras"]}
        total = sum(1 for plan in plans.values() if plan.data_type == kind)
        with outputs.split_writer(kind) as writer:
            for done, (era, table) in enumerate(iter_eras(self.directory / f"{kind}.parquet"), start=1):
                plan = plans[era]
                ids, assets = self.rows[era]
                features, targets = self._extended_era(
                    plan, table, frame, slices, new_raw, outputs.targets, keys
                )
                outputs.write_era(writer, plan, ids, features, targets, assets)
                outputs.tick(f"extend {kind}", done, total)
        outputs.finish_split(kind)

    def _extended_era(
        self,
        plan: EraPlan,
        table: pa.Table,
        frame: pd.DataFrame,
        slices: Mapping[str, slice],
        new_raw: Sequence[str],
        targets: Sequence[str],
        keys: SecretKeys,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return one base era's (int8 features, float32 targets) with the new columns appended."""
        ids, assets = self.rows[plan.era]
        recomputed = id_strings(keys.row_ids(id_tag(plan.date, plan.data_type), assets))
        if not table.column(ID_COLUMN).combine_chunks().equals(ids) or not recomputed.equals(ids):
            raise rule_error(
                "a minor version keeps every id", f"era {plan.era}: base ids and private map disagree"
            )
        if plan.date not in slices:
            raise rule_error(
                "a minor version needs every base era date in the panel", f"no rows on {plan.date}"
            )
        block = frame.iloc[slices[plan.date]]
        where = pd.Index(block["asset"]).get_indexer(assets)
        if (where < 0).any():
            raise rule_error(
                "a minor version needs every base row in the panel",
                f"era {plan.era} ({plan.date}): no row for {int((where < 0).sum())} asset(s)",
            )
        block = block.iloc[where]
        existing = np.stack([table.column(c).to_numpy() for c in self.features]).astype(np.int8, copy=False)
        added = equal_frequency_bins(block[list(new_raw)].to_numpy().T) if new_raw else existing[:0]
        columns = [table.column(t).to_numpy().astype(np.float32) for t in self.targets]
        columns += [block[t].to_numpy(dtype=np.float32) for t in targets[len(self.targets) :]]
        return np.concatenate([existing, added]), np.stack(columns).astype(np.float32, copy=False)


def _split_by_era(table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    eras = table.column("era").to_numpy(zero_copy_only=False)
    if len(eras) == 0:
        return
    starts = np.flatnonzero(np.r_[True, eras[1:] != eras[:-1]])
    stops = np.r_[starts[1:], len(eras)]
    for start, stop in zip(starts, stops, strict=True):
        yield str(eras[start]), table.slice(int(start), int(stop - start))


# ------------------------------------------------------------------------------------ from a panel


def era_frame_from_panel(
    panel: pd.DataFrame,
    *,
    horizons: Sequence[int] | None = None,
    validated: bool = False,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Return a market panel's era frame: rows at weekly era dates and the latest date, raw_*, targets.

    The panel is validated (:func:`crowdalpha.market.panel.validate_panel`) unless the caller
    says it already is (``validated=True`` spares a copy of a large panel); without ``raw_*``
    columns the price-derived features are computed first; without target columns the
    residual targets are built (:func:`crowdalpha.market.targets.build_targets`).
    """
    from crowdalpha.market.calendar import weekly_era_dates
    from crowdalpha.market.panel import PanelError, validate_panel

    def tick(stage: str) -> None:
        if progress is not None:
            progress(stage, 1, 1)

    try:
        if not validated:
            panel = validate_panel(panel)
            tick("validate panel")
        if not raw_feature_columns(panel):
            from crowdalpha.market.features import add_price_features

            panel = add_price_features(panel)
            tick("price features")
        era_dates = weekly_era_dates(panel)
        latest = panel["date"].max()
        wanted = era_dates.append(pd.DatetimeIndex([latest])).unique()
        at_eras = panel["date"].isin(wanted).to_numpy()
        raw = raw_feature_columns(panel)
        existing_targets = target_columns(panel)
        frame = panel.loc[at_eras, ["date", "asset", *raw, *existing_targets]].reset_index(drop=True)
        if not existing_targets:
            from crowdalpha.market import targets as market_targets

            targets = market_targets.build_targets(
                panel, era_dates, tuple(horizons or market_targets.HORIZONS)
            )
            frame = frame.merge(targets, on=["date", "asset"], how="left", validate="one_to_one")
            tick("targets")
    except PanelError as error:
        raise DatasetError(str(error)) from None
    return frame


def build_classic(
    panel: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    *,
    version: str = "v1.0",
    secret: bytes,
    private_dir: str | os.PathLike[str],
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    embargo_eras: int | None = None,
    feature_sets: Mapping[str, float] = DEFAULT_SET_SHARES,
    base_version_dir: str | os.PathLike[str] | None = None,
    base_private_dir: str | os.PathLike[str] | None = None,
    horizons: Sequence[int] | None = None,
    panel_validated: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
) -> BuildReport:
    """Return the report of building Classic ``out_dir/<version>/`` from a market panel (see module doc)."""
    SecretKeys(secret)
    version_number(version)
    frame = era_frame_from_panel(panel, horizons=horizons, validated=panel_validated, progress=progress)
    return write_classic_version(
        frame,
        out_dir,
        version=version,
        secret=secret,
        private_dir=private_dir,
        validation_fraction=validation_fraction,
        embargo_eras=embargo_eras,
        feature_sets=feature_sets,
        base_version_dir=base_version_dir,
        base_private_dir=base_private_dir,
        workers=workers,
        progress=progress,
    )


def write_live_era(
    block: pd.DataFrame,
    path: str | os.PathLike[str],
    manifest: Mapping,
    keys: SecretKeys,
    *,
    live_date: str | pd.Timestamp,
) -> ObfuscatedEra:
    """Return the live era written to ``path`` for ``live_date`` in the layout of a built version.

    ``block`` holds the live date's rows (``asset`` and the raw features the version's private
    ``manifest`` names); the file has the version's columns, fresh keyed ids for that date and NaN
    targets. The returned era carries the private id → asset map.
    """
    if manifest.get("secret_fingerprint") != keys.fingerprint:
        raise rule_error(
            "a live file is built with the version's secret",
            f"the secret's fingerprint is not the one in the manifest of {manifest.get('version')}",
        )
    raw_order = list(manifest["features"])
    missing = [name for name in raw_order if name not in block.columns]
    if missing:
        raise rule_error("the live rows carry every raw feature of the version", f"missing {missing[:5]}")
    targets = list(manifest["targets"])
    live_era = next(era["era"] for era in manifest["eras"] if era["data_type"] == LIVE)
    day = pd.Timestamp(live_date).strftime("%Y-%m-%d")
    rows = era_rows(block, era=live_era, date=day, data_type=LIVE, features=raw_order, targets=[])
    era = obfuscate_era(rows, keys)
    public = [manifest["features"][raw] for raw in raw_order]
    with ClassicFileWriter(Path(path), public, targets) as writer:
        no_targets = np.full((len(targets), era.rows), np.nan, dtype=np.float32)
        writer.write_era(era.era, LIVE, id_strings(era.ids), era.features, no_targets)
    return era
