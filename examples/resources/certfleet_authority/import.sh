terraform import certfleet_authority.root fleet-root
