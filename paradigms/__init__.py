"""Task paradigms: what each trial feeds in and what each readout should learn (issue 4)."""
