"""Data-quality expectation suites (Great Expectations) for the datasets jobs write.

Each suite states what a dataset promises beyond its Arrow schema: keys present and unique,
similarities inside [0, 1]. Jobs validate their outputs with ``validate`` when
``validate: true`` is configured, and record the result in the manifest.
"""

from __future__ import annotations


def _suites():
    import great_expectations.expectations as gxe

    return {
        "records": [
            gxe.ExpectColumnValuesToNotBeNull(column="rid"),
            gxe.ExpectColumnValuesToBeUnique(column="rid"),
            gxe.ExpectColumnValuesToNotBeNull(column="id"),
            gxe.ExpectColumnValuesToNotBeNull(column="source"),
            gxe.ExpectColumnValuesToBeBetween(column="line", min_value=1),
        ],
        "candidates": [
            gxe.ExpectColumnValuesToNotBeNull(column="id_a"),
            gxe.ExpectColumnValuesToNotBeNull(column="id_b"),
            gxe.ExpectColumnValuesToBeBetween(column="jaccard_estimate", min_value=0, max_value=1),
            gxe.ExpectColumnValuesToBeBetween(column="jaccard", min_value=0, max_value=1),
            gxe.ExpectColumnValuesToBeBetween(column="cosine", min_value=-1.0001, max_value=1.0001),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["source_a", "id_a", "source_b", "id_b"]),
        ],
        "scored": [
            gxe.ExpectColumnValuesToNotBeNull(column="id_a"),
            gxe.ExpectColumnValuesToNotBeNull(column="id_b"),
            gxe.ExpectColumnValuesToNotBeNull(column="match_weight"),
            gxe.ExpectColumnValuesToBeBetween(column="match_probability", min_value=0, max_value=1),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["source_a", "id_a", "source_b", "id_b"]),
        ],
        "entities": [
            gxe.ExpectColumnValuesToNotBeNull(column="entity_id"),
            gxe.ExpectColumnValuesToBeUnique(column="rid"),
            gxe.ExpectColumnValuesToBeBetween(column="cluster_size", min_value=1),
        ],
    }


SUITES = ("records", "candidates", "scored", "entities")


def validate(df, suite_name: str) -> dict:
    """Validate a Spark DataFrame against a named suite; a summary for the manifest.

    Returns ``{"success": bool, "failed": [expectation summaries]}``.
    """
    import great_expectations as gx

    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (context.data_sources.add_spark(name=f"sigil_{suite_name}")
             .add_dataframe_asset(name=suite_name)
             .add_batch_definition_whole_dataframe(name="all")
             .get_batch(batch_parameters={"dataframe": df}))
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name, expectations=_suites()[suite_name]))
    result = batch.validate(suite)
    failed = [{"expectation": r.expectation_config.type, "column": r.expectation_config.kwargs.get("column"),
               "unexpected": r.result.get("unexpected_count")} for r in result.results if not r.success]
    return {"success": bool(result.success), "failed": failed}
