"""The report's first sentence says which kinds of task federation moved, and never claims more."""

from fedchem.orchestrator.report.summary import HEADLINES, headline


def figures(class_ci, regr_ci):
    block = lambda m, ci: {"primary_metric": m, "metrics": {m: {"ci_low": ci[0], "ci_high": ci[1]}}}  # noqa: E731
    return {"summary": {"headline": {"classification": block("auc_pr", class_ci), "regression": block("r2", regr_ci)}}}


def test_headline_names_the_kind_that_moved():
    text = headline(figures((-0.01, 0.01), (0.04, 0.14)))
    assert text.startswith("Yes") and "on regression tasks" in text
    assert "classification tasks: no measurable difference" in text


def test_headline_plain_when_all_kinds_agree_or_mixed():
    assert headline(figures((0.01, 0.03), (0.04, 0.14))) == HEADLINES["helped"]
    assert headline(figures((-0.01, 0.01), (-0.02, 0.03))) == HEADLINES["no difference"]
    assert headline(figures((-0.05, -0.01), (0.04, 0.14))) == HEADLINES["mixed"]
    hurt = headline(figures((-0.05, -0.01), (-0.02, 0.03)))
    assert hurt.startswith("No: on this run") and "on classification tasks" in hurt
