"""File formats: BVH, the project's npz motion file, AMASS. `load_motion` / `save_motion` pick by extension."""
