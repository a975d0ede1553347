/*
 * Raising the PostgreSQL error that a shim call reported.
 */
#ifndef CONNECTOR_CORE_ERRORS_H
#define CONNECTOR_CORE_ERRORS_H

#include "connector_shim.h"

extern void raise_core_error(const ConnectorStatus *status) pg_attribute_noreturn();

#endif							/* CONNECTOR_CORE_ERRORS_H */
