"""Small drawings of the graph for the notebooks."""

from __future__ import annotations

import textwrap

from .graph import DISEASE
from .linkpred import EMBEDDING, FREQUENCY, LINK, NEAREST


def draw_neighbourhood(g, ax=None, seed: int = 0):
    """Draw a :meth:`KnowledgeGraph.neighbourhood` graph: diseases as large squares, terms as dots,
    disease -> term edges as wide as the annotated frequency, is_a edges dashed."""
    import matplotlib.pyplot as plt
    import networkx as nx

    if ax is None:
        _, ax = plt.subplots(figsize=(11, 8))
    pos = nx.spring_layout(g, seed=seed, k=1.4 / max(1, g.number_of_nodes()) ** 0.5)
    dis = [n for n, d in g.nodes(data=True) if d.get("type") == DISEASE]
    terms = [n for n in g.nodes if n not in dis]
    ann = [(u, v) for u, v, d in g.edges(data=True) if d.get("relation") != "phenotype_phenotype"]
    isa = [(u, v) for u, v, d in g.edges(data=True) if d.get("relation") == "phenotype_phenotype"]
    widths = [0.5 + 3 * g.edges[e].get("frequency", 0.5) for e in ann]
    nx.draw_networkx_edges(g, pos, edgelist=ann, width=widths, alpha=0.45, edge_color="tab:gray", ax=ax)
    nx.draw_networkx_edges(g, pos, edgelist=isa, style="dashed", edge_color="tab:green", ax=ax)
    nx.draw_networkx_nodes(g, pos, nodelist=dis, node_shape="s", node_size=900, node_color="tab:red", ax=ax)
    shared = [n for n in terms if g.degree(n) > 1]
    nx.draw_networkx_nodes(g, pos, nodelist=terms, node_size=160,
                           node_color=["tab:orange" if n in shared else "tab:blue" for n in terms], ax=ax)
    labels = {n: "\n".join(textwrap.wrap(str(g.nodes[n].get("name", n)), 18)) for n in g.nodes}
    nx.draw_networkx_labels(g, pos, labels=labels, font_size=7, ax=ax)
    ax.set_axis_off()
    return ax


def link_prediction_figure(table, validation):
    """Left: filtered MRR on the test diseases with its 95 % interval for the link predictor, the embedding alone,
    the nearest disease and the frequency baseline (``table``: one row per method, from
    :func:`phenoface.kg.evaluate`); right: the validation MRR of each setting the link predictor (w) and the
    nearest disease (k) tried (``validation``)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.2), gridspec_kw={"width_ratios": [1.3, 1]})
    shown = table.loc[[LINK, EMBEDDING, NEAREST, FREQUENCY]]
    labels = [f"{m} ({s})" if s else m for m, s in zip(shown.index, shown["setting"])]
    err = [shown["mrr"] - shown["mrr_lo"], shown["mrr_hi"] - shown["mrr"]]
    axes[0].barh(labels, shown["mrr"], xerr=err, color=["tab:red", "tab:orange", "tab:blue", "tab:gray"], capsize=3)
    axes[0].invert_yaxis()
    axes[0].set_xlabel("filtered MRR on test diseases (95 % bootstrap CI)")
    axes[0].set_title("Hidden facial terms, alias-aware split")
    for method, ax_label in ((LINK, "w"), (NEAREST, "k")):
        v = validation[validation["method"] == method]
        axes[1].plot(range(len(v)), v["mrr"], "o-",
                     label=f"{method}: {ax_label} = " + ", ".join(f"{x:g}" for x in v["setting"]))
    axes[1].set_xlabel("setting index (left to right as listed)")
    axes[1].set_ylabel("validation MRR")
    axes[1].set_title("Settings tried on validation diseases")
    axes[1].legend(fontsize=7)
    return fig
