"""The Docker lab: the 3 + 3 cluster as containers on a network of its own, addressed by name.

engine.py finds (or starts) a Docker engine, image.py builds the one image every container runs
from this machine's own binaries (no registry), lab.py starts and removes the lab.
"""
