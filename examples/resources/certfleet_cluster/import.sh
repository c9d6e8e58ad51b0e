terraform import certfleet_cluster.prod_eu prod-eu
