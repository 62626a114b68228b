/*
 * le.h - little-endian loads and stores of the wire's integer fields, byte
 * by byte: independent of the host's byte order and of alignment, and
 * never aliasing a peer's ring through a struct (core/frame.h, the CHUNK
 * and RESEND prefixes).
 *
 * Ownership: caller-owned memory only.  Threading: reentrant.
 */
#ifndef VERBUS_CORE_LE_H
#define VERBUS_CORE_LE_H

#include <stdint.h>

static inline uint16_t vbi_ld16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static inline uint32_t vbi_ld32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t vbi_ld64(const uint8_t *p)
{
	return (uint64_t)vbi_ld32(p) | (uint64_t)vbi_ld32(p + 4) << 32;
}

static inline void vbi_st16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void vbi_st32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void vbi_st64(uint8_t *p, uint64_t v)
{
	vbi_st32(p, (uint32_t)v);
	vbi_st32(p + 4, (uint32_t)(v >> 32));
}

#endif /* VERBUS_CORE_LE_H */
