/* CRC-32 as zlib computes it (reflected polynomial 0xEDB88320): the
 * checksum of checkpoint data and headers. */
#ifndef MOONFLOW_CRC32_H
#define MOONFLOW_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC over n more bytes: start with crc = 0. */
uint32_t mfi_crc32(uint32_t crc, const void *data, size_t n);

#endif
