"""The probabilistic record linkage model (Splink, Fellegi-Sunter): which fields are compared and
how, which pairs are compared at all (blocking), how the model is trained (EM, no labels), and
scoring on DuckDB (default, in process) or Spark (when one machine is not enough).

Every comparison is built from Splink's library levels, which Splink writes in each engine's SQL
dialect, so the same model runs on both engines unchanged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import splink.comparison_level_library as cll
import splink.comparison_library as cl
import splink.internals.expectation_maximisation as _em
from splink import Linker, SettingsCreator, block_on

from omo.shared.errors import ValidationFailed

Engine = Literal["duckdb", "spark"]
log = logging.getLogger(__name__)

# -- EM smoothing ------------------------------------------------------------------------------
# Splink 5 refuses an m probability of exactly 0.0, which EM reaches whenever a level is seen only
# among non-matches (on the demo world, "birth dates 2-10 years apart"), and the whole run fails.
# An m probability floored at M_FLOOR is additive smoothing: such a level counts as strong evidence
# against a match (about -13 bits) instead of infinitely strong, and training goes on.
M_FLOOR = 1e-4
_maximisation_step = _em.maximisation_step


def _smoothed_maximisation_step(
    training_fixed_probabilities: set[str],
    core_model_settings: Any,
    param_records: list[dict[str, Any]],
) -> Any:
    for record in param_records:
        if record.get("output_column_name") == "_probability_two_random_records_match":
            continue
        m = record.get("m_probability")
        if m is not None and m < M_FLOOR:
            record["m_probability"] = M_FLOOR
    return _maximisation_step(
        training_fixed_probabilities=training_fixed_probabilities,
        core_model_settings=core_model_settings,
        param_records=param_records,
    )


_em.maximisation_step = _smoothed_maximisation_step


# -- the model ---------------------------------------------------------------------------------

COMPARISONS = ("name", "birth_date", "address", "postcode", "phone", "gender", "stores")


def comparisons() -> list[Any]:
    same_place = (cll.ExactMatchLevel("district"), cll.ExactMatchLevel("city"))
    return [
        cl.CustomComparison(
            output_column_name="name",
            comparison_levels=[
                cll.NullLevel("roman_py"),
                cll.ExactMatchLevel("name_cjk", term_frequency_adjustments=True).configure(
                    label_for_charts="same name"
                ),
                cll.ArrayIntersectLevel("name_one_apart", 1).configure(
                    label_for_charts="one character apart"
                ),
                cll.Or(cll.ExactMatchLevel("roman_wg"), cll.ExactMatchLevel("roman_py")).configure(
                    label_for_charts="same romanisation"
                ),
                cll.JaroWinklerLevel("roman_py", 0.9).configure(
                    label_for_charts="romanisation similar"
                ),
                cll.ArrayIntersectLevel("name_tokens", 1).configure(
                    label_for_charts="surname or given name in common"
                ),
                cll.ElseLevel(),
            ],
        ),
        cl.CustomComparison(
            output_column_name="birth_date",
            comparison_levels=[
                cll.NullLevel("birth_date"),
                cll.ExactMatchLevel("birth_date").configure(label_for_charts="same date"),
                cll.DamerauLevenshteinLevel("birth_date", 1).configure(
                    label_for_charts="one digit or a swap apart"
                ),
                cll.ElseLevel(),
            ],
        ),
        cl.CustomComparison(
            output_column_name="address",
            comparison_levels=[
                cll.NullLevel("city"),
                cll.And(cll.ExactMatchLevel("address"), *same_place).configure(
                    label_for_charts="same address"
                ),
                cll.And(
                    cll.JaroWinklerLevel("address", 0.9),
                    cll.Or(*(cll.ExactMatchLevel(c) for c in ("city", "district", "postcode"))),
                ).configure(label_for_charts="address similar"),
                cll.And(cll.ExactMatchLevel("street"), *same_place).configure(
                    label_for_charts="same street"
                ),
                cll.And(cll.ArrayIntersectLevel("street_one_apart", 1), *same_place).configure(
                    label_for_charts="street one character apart"
                ),
                cll.And(*same_place).configure(label_for_charts="same district"),
                cll.ExactMatchLevel("city").configure(label_for_charts="same city"),
                cll.ElseLevel(),
            ],
        ),
        cl.CustomComparison(
            output_column_name="phone",
            comparison_levels=[
                cll.NullLevel("phone"),
                cll.DamerauLevenshteinLevel("phone", 1).configure(
                    label_for_charts="one digit or a swap apart"
                ),
                cll.ElseLevel(),
            ],
        ),
        cl.CustomComparison(
            output_column_name="postcode",
            comparison_levels=[
                cll.NullLevel("postcode"),
                cll.ExactMatchLevel("postcode").configure(label_for_charts="same postcode"),
                cll.DamerauLevenshteinLevel("postcode", 1).configure(
                    label_for_charts="one digit or a swap apart"
                ),
                cll.ElseLevel(),
            ],
        ),
        cl.ExactMatch("gender"),
        cl.ArrayIntersectAtSizes("stores", [1]),
    ]


# Pairs compared at all: each rule is an equality join, so the work grows with the block sizes,
# not with the square of the members. Each entry lists a rule and narrower forms of it; the
# broadest form that makes at most `budget` pairs on the records at hand is used (a million
# members share names far more often than five thousand do), and an entry with no form under
# budget is left out. The broad entries at the end catch records with typos in the name.
BLOCKING: tuple[tuple[tuple[str, ...], ...], ...] = (
    (("name_cjk",), ("name_cjk", "city"), ("name_cjk", "city", "district")),
    (("roman_py",), ("roman_py", "city"), ("roman_py", "city", "district")),
    (("roman_wg",), ("roman_wg", "city"), ("roman_wg", "city", "district")),
    (("city", "address"),),
    (("birth_date", "surname"),),
    (("birth_date", "city"), ("birth_date", "city", "district")),
    (("birth_date", "postcode"),),
    (("postcode", "address"),),
    (("city", "district", "street", "surname"),),
    (("city", "district", "house_number", "surname"),),
    (("district", "postcode"), ("district", "postcode", "house_number")),
    (("district", "house_number"), ("city", "district", "house_number", "street")),
    (("postcode", "house_number"),),
)


def pairs_made(records: pa.Table, columns: tuple[str, ...]) -> int:
    """How many pairs an equality rule on `columns` makes (records with a null are left out)."""
    table = records.select(list(columns)).drop_null()
    if table.num_rows < 2:
        return 0
    counts = table.group_by(list(columns)).aggregate([([], "count_all")])["count_all"]
    return int(pc.sum(pc.divide(pc.multiply(counts, pc.subtract(counts, 1)), 2)).as_py() or 0)


def blocking_rules(records: pa.Table, budget: int) -> list[tuple[str, ...]]:
    """For each entry of BLOCKING, its broadest form making at most `budget` pairs here."""
    kept: list[tuple[str, ...]] = []
    for forms in BLOCKING:
        for rule in forms:
            made = pairs_made(records, rule)
            if made <= budget:
                if made and rule not in kept:
                    kept.append(rule)
                break
            log.info("blocking rule %s makes %d pairs > budget %d", rule, made, budget)
    return kept


def settings(rules: list[tuple[str, ...]]) -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=[block_on(*cols) for cols in rules],
        retain_matching_columns=True,  # the gamma (level) columns come with them
        retain_intermediate_calculation_columns=True,
    )


@dataclass(frozen=True)
class Training:
    u_max_pairs: float = 3e6  # random pairs for the u probabilities (non-match frequencies)
    em_max_pairs: float | None = 2e6  # blocked pairs per EM session, sampled when more
    seed: int = 42
    # how many true pairs the deterministic rules below catch, for the prior
    prior_recall: float = 0.7
    # most pairs one blocking rule may make, per record compared
    pairs_per_record: int = 20


@dataclass
class Scored:
    pairs: list[dict[str, Any]]  # a < b, probability, weight, weights per comparison
    model: dict[str, Any]
    blocking: list[tuple[str, ...]] = field(default_factory=list)


Timer = Callable[[str], Any]


def score(
    records: pa.Table,
    *,
    engine: Engine,
    threshold: float,
    training: Training,
    timer: Timer,
    spark_master: str = "local[2]",
) -> Scored:
    """Train the model on `records` and score every blocked pair at or above `threshold`."""
    with _quiet_splink(), _backend(engine, records, spark_master) as table:
        budget = max(100_000, training.pairs_per_record * records.num_rows)
        rules = blocking_rules(records, budget)
        # with no rule left, the unique_id rule makes no pairs (never the cartesian product)
        linker = Linker(table, settings(rules or [("unique_id",)]), log_level=None)
        with timer("train"):
            train(linker, records, training)
        model = describe(linker.misc.save_model_to_json())
        if not rules:
            return Scored(pairs=[], model=model)
        with timer("predict"):
            predicted = linker.inference.predict(threshold_match_probability=threshold)
            rows = predicted.as_record_list()
        return Scored(pairs=_pairs(rows, model), model=model, blocking=rules)


# Sessions of EM, each blocked on fields it then cannot train; together they train every field.
EM_RULES = (
    ("name_cjk",),
    ("roman_py",),
    ("city", "address"),
    ("birth_date",),
    ("postcode", "district"),
)


def train(linker: Linker, records: pa.Table, training: Training) -> None:
    """Prior from near-certain rules, u from random pairs, m by EM (no labels needed)."""
    t = linker.training
    t.estimate_probability_two_random_records_match(
        [block_on("roman_py", "birth_date"), block_on("roman_py", "city", "address")],
        recall=training.prior_recall,
    )
    t.estimate_u_using_random_sampling(max_pairs=training.u_max_pairs, seed=training.seed)
    # A session whose rule makes no pairs fails, and Splink 5 then leaves the model without the
    # comparisons that session had set aside: such sessions are not started at all.
    rules = [rule for rule in EM_RULES if pairs_made(records, rule)]
    if not rules:
        raise ValidationFailed(
            "no two members share a name, address or birth date: nothing to train the model on",
            field="members",
        )
    for rule in rules:
        t.estimate_parameters_using_expectation_maximisation(
            block_on(*rule), max_pairs=training.em_max_pairs
        )


def describe(saved: dict[str, Any]) -> dict[str, Any]:
    """The trained model as a merchant can read it: each level's m, u and weight in bits."""
    out: dict[str, Any] = {
        "prior": saved["probability_two_random_records_match"],
        "comparisons": {},
    }
    for comp in saved["comparisons"]:
        levels = [lv for lv in comp["comparison_levels"] if not lv.get("is_null_level")]
        described = []
        for gamma, lv in zip(range(len(levels) - 1, -1, -1), levels, strict=True):
            m, u = lv.get("m_probability"), lv.get("u_probability")
            weight = math.log2(m / u) if m and u else None
            described.append(
                {"gamma": gamma, "level": lv["label_for_charts"], "m": m, "u": u,
                 "weight": None if weight is None else round(weight, 3)}
            )  # fmt: skip
        out["comparisons"][comp["output_column_name"]] = described
    return out


def _pairs(rows: list[dict[str, Any]], model: dict[str, Any]) -> list[dict[str, Any]]:
    labels = {
        name: {lv["gamma"]: lv["level"] for lv in levels}
        for name, levels in model["comparisons"].items()
    }
    out = []
    for r in rows:
        weights = {}
        for name in COMPARISONS:
            gamma = int(r[f"gamma_{name}"])
            weight = float(r[f"mw_{name}"]) + float(r.get(f"mw_tf_adj_{name}", 0.0) or 0.0)
            weights[name] = {
                "level": "missing" if gamma == -1 else labels[name].get(gamma, str(gamma)),
                "weight": round(weight, 3),
            }
        a, b = sorted((int(r["unique_id_l"]), int(r["unique_id_r"])))
        out.append(
            {"a": a, "b": b, "probability": float(r["match_probability"]),
             "weight": round(float(r["match_weight"]), 3), "weights": weights}
        )  # fmt: skip
    return out


@contextmanager
def _quiet_splink() -> Iterator[None]:
    """Splink warns about every level a data set never shows (no postcodes in Taiwan, say) on
    the root logger; those notes are in the run's model (weight None), not on the console."""
    splink_log = logging.getLogger("splink")
    level = splink_log.level
    splink_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        splink_log.setLevel(level)


@contextmanager
def _backend(engine: Engine, records: pa.Table, spark_master: str) -> Iterator[Any]:
    if engine == "duckdb":
        from splink import DuckDBAPI

        db_api = DuckDBAPI()
        try:
            yield db_api.register(records, table_name="members")
        finally:
            db_api._con.close()
    elif engine == "spark":
        from omo.identity.spark import spark_api

        with spark_api(spark_master) as (db_api, spark):
            frame = spark.createDataFrame(records)  # Spark 4 takes Arrow tables
            yield db_api.register(frame, table_name="members")
    else:
        raise ValueError(f"unknown engine {engine!r}; use duckdb or spark")
