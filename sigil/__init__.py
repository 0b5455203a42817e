"""sigil: entity resolution and graph analytics on Spark and Beam."""
