"""The data half: the canonical dataset, the sample builder, hashing, validation and splitting."""
