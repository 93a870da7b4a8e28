"""After the search: a trial rebuilt, retrained, saved as a model folder, exported, rerun."""
