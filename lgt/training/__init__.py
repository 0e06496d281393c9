"""Training: TRL SFT and DPO on the exported sets, as a job file a subprocess (or `accelerate launch`) runs."""
