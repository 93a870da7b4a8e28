"""Many workers on one study: settings recorded, samplers and storages opened, trials run and counted."""
