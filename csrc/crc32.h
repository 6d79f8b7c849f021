/* CRC-32 as zlib computes it (reflected polynomial 0xEDB88320): the
 * checksum of checkpoint data and headers. CRC-32C (Castagnoli, reflected
 * polynomial 0x82F63B78) masked as TFRecord files store it: event files. */
#ifndef MOONFLOW_CRC32_H
#define MOONFLOW_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC over n more bytes: start with crc = 0. */
uint32_t mfi_crc32(uint32_t crc, const void *data, size_t n);

/* CRC-32C, continued the same way (crc = 0 to start). */
uint32_t mfi_crc32c(uint32_t crc, const void *data, size_t n);
/* TFRecord's masked CRC-32C of n bytes: ((c >> 15) | (c << 17)) + 0xa282ead8. */
uint32_t mfi_crc32c_masked(const void *data, size_t n);

#endif
