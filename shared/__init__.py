"""The library the function app calls: settings, synthetic traffic, cost summaries."""
