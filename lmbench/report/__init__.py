"""What a reader sees of a run: PNG figures (:mod:`.plots`) and ``report.md`` (:mod:`.markdown`)."""
