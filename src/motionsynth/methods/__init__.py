"""How each family solves the tasks, all behind the one `tasks.Method` interface: `baselines` (non-learned),
`prior` (HM-VAE latent optimisation), `meva` (MEVA denoising); `completion`, `denoising` and `root` are what the
learned methods share. `motionsynth.registry.load_method` turns a checkpoint into its method."""
