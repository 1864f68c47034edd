"""Diagnostics: score an uploaded validation-prediction file per era, as numerapi's ``diagnostics`` reads it.

``create_diagnostics`` reads an upload (CSV or Parquet, ``id`` + ``prediction``; the same format
rules as a submission, with the validation ids as the universe and partial coverage allowed),
joins it to ``validation.parquet`` of the tournament's newest dataset version and scores it with
:func:`crowdalpha.scoring.score_eras`: CORR always; MMC when the version publishes
``validation_meta_model.parquet`` (column ``numerai_meta_model``, else its first numeric column);
BMC when it publishes ``validation_benchmark_models.parquet`` (its first numeric column); FNC and
the largest feature correlation against the ``medium`` feature set of ``features.json``; and the
CORR of ``validation_example_preds.parquet``. Only eras holding at least one uploaded id are
scored; within such an era at most 20 % of the rows may lack a prediction (the scoring engine's
rule). Summaries are :func:`crowdalpha.scoring.summarize_scores` (std ddof 0, Sharpe = mean/std).

The result is a JSON blob ``diagnostics/<model id>/<id>.json`` (no table): status ``done``, or
``error`` with a message ``<rule>: <detail>`` when the file breaks a rule or cannot be scored.
Problems with the request itself (wrong model, no validation data) raise instead.
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from crowdalpha.scoring import ScoringError, score_eras, summarize_scores
from crowdalpha.service.accounts import AccountRef
from crowdalpha.service.context import Context
from crowdalpha.service.datasets import open_dataset_file
from crowdalpha.service.errors import ServiceError
from crowdalpha.service.submissions import _owned_model
from crowdalpha.service.uploads import claim_upload
from crowdalpha.store import NotFound, run_transaction
from crowdalpha.tournament.config import SubmissionRules
from crowdalpha.tournament.submissions import SubmissionError, validate_submission

DIAGNOSTICS_PREFIX = "diagnostics"
VALIDATION_FILE = "validation.parquet"
META_MODEL_FILE = "validation_meta_model.parquet"
BENCHMARK_FILE = "validation_benchmark_models.parquet"
EXAMPLE_PREDS_FILE = "validation_example_preds.parquet"
FEATURES_FILE = "features.json"
FNC_FEATURE_SET = "medium"
META_MODEL_COLUMN = "numerai_meta_model"
ERA_COLUMN = "era"
TARGET_COLUMN = "target"
NON_VALUE_COLUMNS = frozenset({"id", ERA_COLUMN, "data_type"})
STATUS_DONE = "done"
STATUS_ERROR = "error"


def _key(model_id: str, diagnostics_id: str) -> str:
    return f"{DIAGNOSTICS_PREFIX}/{model_id}/{diagnostics_id}.json"


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


class _Dataset:
    """The validation files of one dataset version, opened lazily by name."""

    def __init__(self, ctx: Context, tournament_id: int) -> None:
        self.ctx = ctx
        self.tournament_id = tournament_id
        try:
            validation = open_dataset_file(ctx, tournament_id, VALIDATION_FILE)
        except NotFound:
            raise ServiceError(
                "no_validation_data", "the current dataset version publishes no validation.parquet"
            ) from None
        self.version = validation.info.version
        self.validation = validation

    def optional(self, name: str) -> Any:
        try:
            return open_dataset_file(self.ctx, self.tournament_id, f"{self.version}/{name}")
        except NotFound:
            return None


def _read_parquet(opened: Any, columns: list[str] | None = None) -> pd.DataFrame:
    with opened.open() as handle:
        names = pq.read_schema(handle).names
        handle.seek(0)
        wanted = None if columns is None else [c for c in [*columns, "id"] if c in names]
        frame = pq.read_table(handle, columns=wanted).to_pandas()
    if "id" in frame.columns:
        frame = frame.set_index("id")
    frame.index = frame.index.astype(str)
    return frame


def _reference_column(frame: pd.DataFrame, preferred: str | None) -> str | None:
    if preferred is not None and preferred in frame.columns:
        return preferred
    numeric = [
        c for c in frame.columns if c not in NON_VALUE_COLUMNS and pd.api.types.is_numeric_dtype(frame[c])
    ]
    return numeric[0] if numeric else None


def _features(dataset: _Dataset, available: list[str]) -> list[str]:
    opened = dataset.optional(FEATURES_FILE)
    if opened is None:
        return []
    with opened.open() as handle:
        sets = json.loads(handle.read()).get("feature_sets", {})
    return [name for name in sets.get(FNC_FEATURE_SET, []) if name in available]


def _summary(values: pd.Series) -> dict[str, float | None]:
    frame = pd.DataFrame(
        {"x": values.to_numpy(dtype=np.float64)},
        index=pd.MultiIndex.from_arrays([values.index, ["corr"] * len(values)], names=["era", "score"]),
    )
    row = summarize_scores(frame).iloc[0]
    return {name: _finite(row[name]) for name in ("mean", "std", "sharpe", "max_drawdown", "autocorrelation")}


def score_validation_predictions(
    ctx: Context, tournament_id: int, rules: SubmissionRules, content: bytes
) -> dict[str, Any]:
    """Return the diagnostics of an uploaded validation file; raise on a file that breaks a rule."""
    dataset = _Dataset(ctx, tournament_id)
    with dataset.validation.open() as handle:
        available = pq.read_schema(handle).names
    features = _features(dataset, available)
    validation = _read_parquet(dataset.validation, [ERA_COLUMN, TARGET_COLUMN, *features])
    rules = dataclasses.replace(rules, min_tickers=1, max_upload_bytes=ctx.settings.upload_limit_bytes)
    validated = validate_submission(content, {"id": validation.index.to_numpy(dtype=object)}, rules)
    predictions = pd.Series(validated.values, index=pd.Index(validated.ids.astype(str), name="id"))
    frame = validation.assign(prediction=predictions.reindex(validation.index))
    covered = frame.loc[frame["prediction"].notna(), ERA_COLUMN].unique()
    frame = frame[frame[ERA_COLUMN].isin(covered)]

    meta_col = benchmark_col = None
    for name, preferred, column in (
        (META_MODEL_FILE, META_MODEL_COLUMN, "meta_model"),
        (BENCHMARK_FILE, None, "benchmark"),
    ):
        opened = dataset.optional(name)
        if opened is None:
            continue
        reference = _read_parquet(opened)
        source = _reference_column(reference, preferred)
        if source is None:
            continue
        frame = frame.assign(**{column: reference[source].reindex(frame.index).to_numpy(dtype=np.float64)})
        if column == "meta_model":
            meta_col = column
        else:
            benchmark_col = column

    per_era = score_eras(
        frame,
        ERA_COLUMN,
        ["prediction"],
        TARGET_COLUMN,
        meta_model_col=meta_col,
        benchmark_col=benchmark_col,
        features=features or None,
    )["prediction"].unstack("score")

    example = None
    opened = dataset.optional(EXAMPLE_PREDS_FILE)
    if opened is not None:
        example_preds = _read_parquet(opened)
        source = _reference_column(example_preds, "prediction")
        if source is not None:
            example_frame = frame[[ERA_COLUMN, TARGET_COLUMN]].assign(
                example=example_preds[source].reindex(frame.index).to_numpy(dtype=np.float64)
            )
            try:
                example = score_eras(example_frame, ERA_COLUMN, ["example"], TARGET_COLUMN)["example"]
                example = example.xs("corr", level="score")
            except ScoringError:
                example = None

    summaries = {name: _summary(per_era[name].dropna()) for name in per_era.columns}
    if "mmc" in per_era.columns:
        summaries["corr_plus_mmc"] = _summary((per_era["corr"] + per_era["mmc"]).dropna())
    if example is not None and len(example):
        summaries["example_corr"] = _summary(example)
    rows = []
    for era, scores in per_era.iterrows():
        row = {"era": str(era), **{name: _finite(scores[name]) for name in per_era.columns}}
        row["example_corr"] = _finite(example.get(era)) if example is not None else None
        rows.append(row)
    return {
        "dataset_version": dataset.version,
        "eras_accepted": int(per_era["corr"].notna().sum()),
        "rows_scored": int(frame["prediction"].notna().sum()),
        "ids_ignored": len(validated.invalid_tickers),
        "per_era": rows,
        "summary": summaries,
    }


def _failure_message(error: Exception) -> str:
    if isinstance(error, ScoringError):
        return f"scoring_failed: {error}"
    return str(error)


def create_diagnostics(ctx: Context, account: AccountRef, model_id: str, upload_key: str) -> str:
    """Score the upload at ``upload_key`` (``uploads/<model id>/<uuid>-<name>``); return the diagnostics id.

    A file that breaks a rule still gets an id: its diagnostics have status ``error`` and the rule's
    message. The upload itself is left for the caller to delete.
    """
    model, loaded = run_transaction(
        ctx.engine, lambda uow: _owned_model(uow, account, model_id), read_only=True
    )
    filename = claim_upload(ctx, model.id, model.name, upload_key, "diagnosticsUploadAuth")
    content = ctx.blobs.read_bytes(upload_key)
    diagnostics_id = str(uuid.uuid4())
    now = ctx.now().isoformat()
    record: dict[str, Any] = {
        "id": diagnostics_id,
        "model_id": model.id,
        "tournament": loaded.name,
        "filename": filename,
        "created_at": now,
        "updated_at": now,
    }
    try:
        scored = score_validation_predictions(ctx, model.tournament_id, loaded.config.submissions, content)
        record.update(scored, status=STATUS_DONE, message=None)
    except (SubmissionError, ScoringError) as error:
        record.update(status=STATUS_ERROR, message=_failure_message(error))
    record["updated_at"] = ctx.now().isoformat()
    ctx.blobs.put_bytes(_key(model.id, diagnostics_id), json.dumps(record).encode())
    return diagnostics_id


def get_diagnostics(
    ctx: Context, account: AccountRef, model_id: str, diagnostics_id: str | None = None
) -> dict[str, Any]:
    """Return stored diagnostics of the account's model: the one named, or the newest."""
    model, _ = run_transaction(ctx.engine, lambda uow: _owned_model(uow, account, model_id), read_only=True)
    if diagnostics_id is not None:
        try:
            canonical = str(uuid.UUID(diagnostics_id))
        except ValueError:
            canonical = None
        key = _key(model.id, canonical) if canonical else None
        if key is None or not ctx.blobs.exists(key):
            raise NotFound(f"no diagnostics {diagnostics_id!r} for model {model.name!r}")
        return json.loads(ctx.blobs.read_bytes(key))
    records = [
        json.loads(ctx.blobs.read_bytes(key))
        for key in ctx.blobs.keys(f"{DIAGNOSTICS_PREFIX}/{model.id}")
        if key.endswith(".json")
    ]
    if not records:
        raise NotFound(f"no diagnostics for model {model.name!r}; upload validation predictions first")
    return max(records, key=lambda record: record["created_at"])
