"""X-ray imaging without torch: canonical reader, physics renderer, palettes, TIP, drift scenarios, simulator."""
