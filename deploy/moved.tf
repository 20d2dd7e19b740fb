# Until this folder existed, `make deploy` applied the repository's root module itself, so an
# existing state holds module.table..., module.stream_function[...]... and
# module.monitoring.... Here the same resources are module.video_stats.module.<name>...: these
# blocks tell Terraform they moved, so the first plan after the upgrade moves them in the state
# and replaces nothing (without them it would destroy the table and the mappings and create
# new ones). tests/integration/test_integration_upgrade.py applies an earlier release the old
# way and plans this folder against its state. Keep the blocks as long as a state from before
# the move may exist; they cost nothing on a new deployment.
moved {
  from = module.table
  to   = module.video_stats.module.table
}

moved {
  from = module.stream_function
  to   = module.video_stats.module.stream_function
}

moved {
  from = module.monitoring
  to   = module.video_stats.module.monitoring
}
