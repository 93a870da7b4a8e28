"""What is shown: the HTML report, the model plots, importances and the dashboard."""
