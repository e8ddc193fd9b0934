//! Nothing but the black-box tests in `it/`.
