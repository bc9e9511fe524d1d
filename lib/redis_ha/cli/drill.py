"""Training drills: inject a realistic fault into the lab, let a trainee respond, score it."""

from __future__ import annotations

from invoke import Collection

drill = Collection("drill")
