"""Notebook 02's link-prediction figure draws the four methods and the settings tried."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from phenoface.kg import EMBEDDING, FREQUENCY, LINK, NEAREST  # noqa: E402
from phenoface.kg.figures import link_prediction_figure  # noqa: E402


def test_link_prediction_figure():
    table = pd.DataFrame({"mrr": [0.4, 0.2, 0.3, 0.1], "mrr_lo": [0.3, 0.1, 0.2, 0.05], "mrr_hi": [0.5, 0.3, 0.4, 0.15],
                          "setting": ["w=0.5", "", "k=3", ""]}, index=[LINK, EMBEDDING, NEAREST, FREQUENCY])
    validation = pd.DataFrame({"method": [LINK, LINK, NEAREST], "setting": [0.25, 0.5, 3], "mrr": [0.3, 0.35, 0.2]})
    fig = link_prediction_figure(table, validation)
    left, right = fig.axes
    assert [t.get_text() for t in left.get_yticklabels()] == [f"{LINK} (w=0.5)", EMBEDDING, f"{NEAREST} (k=3)", FREQUENCY]
    assert [round(p.get_width(), 3) for p in left.patches] == [0.4, 0.2, 0.3, 0.1]
    assert [t.get_text() for t in right.get_legend().get_texts()] == [f"{LINK}: w = 0.25, 0.5", f"{NEAREST}: k = 3"]
    plt.close(fig)
