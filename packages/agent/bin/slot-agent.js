#!/usr/bin/env -S node --max-semi-space-size=1
// The agent idles most of the time: a small young generation keeps its memory small (see BENCHMARKS.md).
import '../dist/main.js';
