terraform import certfleet_rollout.fleet fleet
