"""Storage: manifest (commit point), segments (memory-mapped codes), SQLite ids/metadata."""
