"""``crowdalpha simulate CONFIG.toml``: the TOML file that declares a season simulation.

Top-level keys: ``title``, ``home`` (the directory the season's home, report and tables go to;
relative paths are relative to the config file), ``seed``, ``tournaments``, ``benchmark_models``,
``fund_backtest``;
tables ``[market]`` (``source`` synthetic / pse / panel, ``panel``, ``assets``, ``days``, ``start``,
``raw_features``, ``crypto_assets``, ``alpha_strength``), ``[dates]`` (``rounds`` — the market's
last trading days — or ``start`` / ``end``), ``[crowd]`` (``default`` = use the default crowd;
``[[crowd.models]]`` with ``model``, ``tournament``, ``strategy``, ``stake``, ``late``, ``skip_every``,
``stake_changes`` = [[day, tokens], …]) and ``[[payouts.<tournament>]]`` (``name`` plus any of
``multipliers`` = {score = multiplier}, ``clip``, ``stake_threshold``). Every mistake is reported
as a :class:`SimulationError` naming the file and the field. ``examples/season.toml`` shows all.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from crowdalpha.sim.counterfactual import PayoutVariant, payout_variant
from crowdalpha.sim.participants import (
    CLASSIC_STRATEGIES,
    COPYCAT,
    PRICE_STRATEGIES,
    Participant,
    default_crowd,
)
from crowdalpha.sim.simulate import CONFIGS, TOURNAMENTS, MarketSpec, SimulationError, SimulationSpec
from crowdalpha.tournament.config import ConfigError

TOP_KEYS = {
    "title",
    "home",
    "seed",
    "tournaments",
    "benchmark_models",
    "fund_backtest",
    "market",
    "dates",
    "crowd",
    "payouts",
}
MARKET_KEYS = {
    "source",
    "panel",
    "assets",
    "days",
    "start",
    "raw_features",
    "crypto_assets",
    "alpha_strength",
}
MODEL_KEYS = {"model", "tournament", "strategy", "stake", "late", "skip_every", "stake_changes"}
VARIANT_KEYS = {"name", "multipliers", "clip", "stake_threshold"}


class _Reader:
    """Typed access to one table of the config, naming ``file: path.to.field`` in every error."""

    def __init__(self, source: Path, table: Mapping[str, Any], where: str, allowed: set[str]) -> None:
        self.source, self.table, self.where = source, table, where
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.error(unknown[0], f"is not a known key; the keys here are {sorted(allowed)}")

    def error(self, key: str, message: str) -> SimulationError:
        field = f"{self.where}.{key}" if self.where else key
        return SimulationError(f"{self.source}: {field} {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        if key not in self.table:
            return default
        value = self.table[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
            names = "/".join(k.__name__ for k in _kinds(kind))
            raise self.error(key, f"must be {names}; got {value!r}")
        return value

    def positive(self, key: str, default: int) -> int:
        value = self.get(key, int, default)
        if value <= 0:
            raise self.error(key, f"must be > 0; got {value}")
        return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _market(source: Path, table: Mapping[str, Any]) -> MarketSpec:
    reader = _Reader(source, table, "market", MARKET_KEYS)
    kind = reader.get("source", str, "synthetic")
    if kind not in ("synthetic", "pse", "panel"):
        raise reader.error("source", f"is synthetic, pse or panel; got {kind!r}")
    panel = reader.get("panel", str)
    if kind == "panel" and panel is None:
        raise reader.error("panel", "is needed when source is panel (the panel file's path)")
    defaults = MarketSpec()
    return MarketSpec(
        source=kind,
        panel=None if panel is None else (source.parent / panel),
        assets=reader.positive("assets", defaults.assets),
        days=reader.positive("days", defaults.days),
        start=str(reader.get("start", (str, date), defaults.start)),
        raw_features=reader.positive("raw_features", defaults.raw_features),
        crypto_assets=reader.positive("crypto_assets", defaults.crypto_assets),
        alpha_strength=_alpha(reader, defaults.alpha_strength),
    )


def _alpha(reader: _Reader, default: float) -> float:
    value = float(reader.get("alpha_strength", (int, float), default))
    if not value >= 0:
        raise reader.error("alpha_strength", f"must be ≥ 0; got {value}")
    return value


def _participant(
    source: Path, table: Mapping[str, Any], where: str, tournaments: tuple[str, ...]
) -> Participant:
    reader = _Reader(source, table, where, MODEL_KEYS)
    for key in ("model", "tournament", "strategy"):
        if key not in table:
            raise reader.error(key, "is required")
    tournament = reader.get("tournament", str)
    if tournament not in tournaments:
        raise reader.error("tournament", f"must be one of the season's tournaments {list(tournaments)}")
    strategy = reader.get("strategy", str)
    known = [*CLASSIC_STRATEGIES, COPYCAT] if tournament == "classic" else list(PRICE_STRATEGIES)
    if strategy not in known:
        raise reader.error("strategy", f"is one of {sorted(known)} for {tournament}; got {strategy!r}")
    changes = reader.get("stake_changes", list, [])
    for index, change in enumerate(changes):
        if not (isinstance(change, list) and len(change) == 2 and all(type(v) is int for v in change)):
            raise reader.error(
                f"stake_changes[{index}]", f"must be [day index, whole tokens]; got {change!r}"
            )
    stake = reader.get("stake", int, 0)
    if stake < 0:
        raise reader.error("stake", f"must be ≥ 0 whole tokens; got {stake}")
    skip_every = reader.get("skip_every", int, 0)
    if skip_every < 0:
        raise reader.error("skip_every", f"must be ≥ 0; got {skip_every}")
    return Participant(
        reader.get("model", str),
        tournament,
        strategy,
        stake,
        late=reader.get("late", bool, strategy == COPYCAT),
        skip_every=skip_every,
        stake_changes=tuple((day, tokens) for day, tokens in changes),
    )


def _crowd(source: Path, table: Mapping[str, Any], tournaments: tuple[str, ...]) -> tuple[Participant, ...]:
    reader = _Reader(source, table, "crowd", {"default", "models"})
    crowd = list(default_crowd(tournaments)) if reader.get("default", bool, True) else []
    for index, model in enumerate(reader.get("models", list, [])):
        if not isinstance(model, dict):
            raise reader.error(f"models[{index}]", "must be a table")
        crowd.append(_participant(source, model, f"crowd.models[{index}]", tournaments))
    names = [p.model for p in crowd]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise reader.error("models", f"name each model once; {duplicated} appear more than once")
    if not crowd:
        raise reader.error("models", "the crowd is empty: set default = true or list models")
    return tuple(crowd)


def _variants(
    source: Path, table: Mapping[str, Any], tournaments: tuple[str, ...]
) -> dict[str, list[PayoutVariant]]:
    variants: dict[str, list[PayoutVariant]] = {}
    for tournament, entries in table.items():
        if tournament not in tournaments:
            raise SimulationError(f"{source}: payouts.{tournament} is not one of the season's tournaments")
        if not isinstance(entries, list):
            raise SimulationError(
                f"{source}: payouts.{tournament} must be a list of [[payouts.{tournament}]] tables"
            )
        for index, entry in enumerate(entries):
            where = f"payouts.{tournament}[{index}]"
            reader = _Reader(source, entry, where, VARIANT_KEYS)
            name = reader.get("name", str)
            if not name:
                raise reader.error("name", "is required")
            multipliers = reader.get("multipliers", dict)
            if multipliers is not None:
                known = {score.name for score in CONFIGS[tournament].scores}
                for score, value in multipliers.items():
                    if score not in known or isinstance(value, bool) or not isinstance(value, (int, float)):
                        raise reader.error(
                            f"multipliers.{score}", f"must be a number for a score in {sorted(known)}"
                        )
            try:
                variants.setdefault(tournament, []).append(
                    payout_variant(
                        name,
                        CONFIGS[tournament].payout,
                        multipliers=multipliers,
                        clip=reader.get("clip", (int, float)),
                        stake_threshold=reader.get("stake_threshold", int),
                    )
                )
            except ConfigError as error:
                raise SimulationError(f"{source}: {where}: {error}") from None
    return variants


def load_simulation_spec(path: str | Path, *, home: Path | None = None) -> SimulationSpec:
    """Return the simulation the TOML file at ``path`` declares (``home`` overrides its ``home``)."""
    source = Path(path)
    try:
        table = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as error:
        raise SimulationError(f"{source}: cannot be read ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise SimulationError(f"{source}: is not valid TOML ({error})") from None
    reader = _Reader(source, table, "", TOP_KEYS)
    tournaments = tuple(reader.get("tournaments", list, list(TOURNAMENTS)))
    unknown = [t for t in tournaments if t not in CONFIGS]
    if unknown or not tournaments:
        raise reader.error("tournaments", f"must list some of {list(CONFIGS)}; got {list(tournaments)}")
    dates = _Reader(source, reader.get("dates", dict, {}), "dates", {"rounds", "start", "end"})
    start, end = dates.get("start", date), dates.get("end", date)
    if end is not None and start is None:
        raise dates.error("end", "needs dates.start")
    if start is not None and end is not None and end < start:
        raise dates.error("end", f"{end} is before dates.start {start}")
    if start is not None and "rounds" in dates.table:
        raise dates.error("rounds", "and dates.start both set the season; give one")
    configured_home = reader.get("home", str, "season-home")
    return SimulationSpec(
        home=home if home is not None else source.parent / configured_home,
        market=_market(source, reader.get("market", dict, {})),
        tournaments=tournaments,
        seed=reader.get("seed", int, 7),
        rounds=None if start is not None else dates.positive("rounds", 28),
        season_start=start,
        season_end=end,
        crowd=_crowd(source, reader.get("crowd", dict, {}), tournaments),
        variants=_variants(source, reader.get("payouts", dict, {}), tournaments) or None,
        benchmark_models=reader.get("benchmark_models", bool, True),
        fund_backtest=reader.get("fund_backtest", bool, True),
        title=reader.get("title", str, f"crowdalpha season ({source.name})"),
    )
