/* zlib's CRC-32 (reflected polynomial 0xEDB88320) and CRC-32C (Castagnoli,
 * 0x82F63B78), table-driven. */
#include "crc32.h"

#include <pthread.h>

static uint32_t table[256], table_c[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t r = i;
    for (int k = 0; k < 8; k++) r = (r >> 1) ^ (0xEDB88320u & -(r & 1));
    table[i] = r;
    r = i;
    for (int k = 0; k < 8; k++) r = (r >> 1) ^ (0x82F63B78u & -(r & 1));
    table_c[i] = r;
  }
}

uint32_t mfi_crc32(uint32_t crc, const void *data, size_t n)
{
  pthread_once(&table_once, table_init);
  const unsigned char *p = data;
  crc = ~crc;
  while (n--) crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

uint32_t mfi_crc32c(uint32_t crc, const void *data, size_t n)
{
  pthread_once(&table_once, table_init);
  const unsigned char *p = data;
  crc = ~crc;
  while (n--) crc = table_c[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

uint32_t mfi_crc32c_masked(const void *data, size_t n)
{
  uint32_t c = mfi_crc32c(0, data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}
