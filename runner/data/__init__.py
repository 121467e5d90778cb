"""Inputs and weights a study draws on: labelled datasets, the patterns task, seeded weight
generators. Independent of the simulation."""
