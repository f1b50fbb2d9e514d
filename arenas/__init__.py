"""metarena arenas: matches, the live viewer, watching and human play.

>>> from metarena.arenas.watch import watch
>>> watch("treasure", None, ["scripted", "random"], seed=3, episodes=2, record="match.gif", headless=True, fps=10)
"""
