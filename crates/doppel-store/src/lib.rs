//! doppel's state store: the Store trait, its embedded (redb) implementation and the contract tests every implementation passes.
