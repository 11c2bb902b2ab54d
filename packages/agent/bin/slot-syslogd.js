#!/usr/bin/env node
import '../dist/syslogd-main.js';
