"""Step 4 of ValueLex: from factors to a named taxonomy (paper Sec. 3.2 step 2, Alg. 1 lines 6-8, Sec. 4.1, Fig. 2).

`build_taxonomy(factors)` runs the step: subclusters inside each factor (`clusters`), names (`naming`), a 2-D view,
and returns a `TaxonomyResult` whose `write(dir)` produces

* `taxonomy.yaml`, in the schema of params/taxonomies/*.yaml (name, title, source, dimensions -> subdimensions, each
  with name, definition and markers = its words), so `systems.load_system(<run>/taxonomy.yaml)` scores with a run's
  own value system; extra keys: `method` (how it was built), per node `words`, `naming_method`, `factor` /
  `subcluster`, and `unassigned` (words no factor took). A factor that is not split (fewer than 4 words, or k = 1) is a
  dimension without subdimensions, like MFT's foundations: its own leaf.
* `clusters.csv`: word, factor, dimension, subcluster, subdimension, silhouette, umap_x, umap_y, loading; unassigned
  words have factor -1, subcluster -1 and empty dimension/subdimension.

Notebook 04 helpers (each returns a DataFrame or a plotly figure): `taxonomy_table`, `sunburst_figure`,
`umap_figure`, `silhouette_figure`, `similarity_heatmap`, `taxonomy_stability` + `stability_summary` +
`stability_figure` (bootstrap of respondents, refit EFA + clustering, adjusted Rand index, how often K changes), and
`taxonomies_by_training` + `training_summary` + `compare_sunbursts` (paper Fig. 2 c/d: pretrained vs aligned alone).

Layout (sub-modules import their siblings directly, never this package):
  clusters   subclusters inside each factor (k by silhouette: `choose_subcluster_k`), 2-D view, paper similarity
  naming     names and definitions of dimensions and subdimensions (LLM through the shared layer, or medoid words)
  build      `build_taxonomy`, `TaxonomyResult`, the taxonomy dict and table, the clusters table
  files      taxonomy.yaml / clusters.csv writing and reading; reading step 3's outputs
  figures    sunburst, UMAP view, silhouette per k, similarity heatmap (plotly imported inside, on purpose: heavy)
  stability  `taxonomy_stability` and its summary and figure
  training   pretrained vs aligned respondents alone
"""
from __future__ import annotations

from . import clusters, naming
from .build import (
    TaxonomyResult,
    build_taxonomy,
    clusters_frame,
    taxonomy_dict,
    taxonomy_table,
)
from .figures import (
    UNASSIGNED,
    silhouette_figure,
    similarity_heatmap,
    sunburst_figure,
    umap_figure,
)
from .files import (
    CLUSTER_COLUMNS,
    load_clusters,
    read_factor_outputs,
    write_clusters,
    write_taxonomy,
)
from .stability import (
    respondent_of,
    stability_figure,
    stability_summary,
    taxonomy_stability,
)
from .training import (
    compare_sunbursts,
    split_by_training,
    taxonomies_by_training,
    training_summary,
)

__all__ = [
    "CLUSTER_COLUMNS",
    "UNASSIGNED",
    "TaxonomyResult",
    "build_taxonomy",
    "clusters",
    "clusters_frame",
    "compare_sunbursts",
    "load_clusters",
    "naming",
    "read_factor_outputs",
    "respondent_of",
    "silhouette_figure",
    "similarity_heatmap",
    "split_by_training",
    "stability_figure",
    "stability_summary",
    "sunburst_figure",
    "taxonomies_by_training",
    "taxonomy_dict",
    "taxonomy_stability",
    "taxonomy_table",
    "training_summary",
    "umap_figure",
    "write_clusters",
    "write_taxonomy",
]
