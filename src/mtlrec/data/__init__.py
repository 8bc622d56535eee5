"""The data layer: raw files -> canonical tables -> splits -> task labels."""
