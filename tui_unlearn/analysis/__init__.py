"""Reading sessions back for people, shared by the CLI, the batch face and the TUI.

- ``tables``: ``fmt``, the one table routine (plain text and Markdown), session rows,
  before/after and comparison tables.
- ``reporting``: the lines a running job prints (progress and ETA, evaluation, run start)
  and short session labels.
- ``curves``: series from events, their goals, thinning and plotting (plotext).
- ``comparison``: several sessions side by side (``tui-unlearn analyze``).
- ``exports``: a comparison as CSV, JSON and Markdown.

Nothing here imports Textual; plotext is imported only by the functions that draw.
"""
