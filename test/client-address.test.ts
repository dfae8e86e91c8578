import t from 'tap'
import { clientAddress, normaliseAddress, trustedProxies } from '../src/client-address.js'

t.test('every spelling of one client is that client; what is not an address is nothing', async (t) => {
  const cases: Array<[string, string | undefined]> = [
    ['198.51.100.7', '198.51.100.7'],
    ['198.51.100.7:40001', '198.51.100.7'],
    ['198.51.100.7:40007', '198.51.100.7'],
    [' 198.51.100.7 ', '198.51.100.7'],
    ['2001:db8::5', '2001:db8::'],
    ['2001:DB8:0:0:1::5', '2001:db8::'],
    ['2001:db8:0:0:ffff:ffff:ffff:ffff', '2001:db8::'],
    ['[2001:db8::5]', '2001:db8::'],
    ['[2001:db8::5]:443', '2001:db8::'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::'],
    ['fe80::1%eth0', 'fe80::'],
    ['[fe80::1%25eth0]:80', 'fe80::'],
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['::ffff:0102:0304', '1.2.3.4'],
    ['[::ffff:1.2.3.4]:8080', '1.2.3.4'],
    ['::1', '::'],
    ['64:ff9b::1.2.3.4', '64:ff9b::'],
    ['foo', undefined],
    ['{user:x}', undefined],
    ['x'.repeat(8000), undefined],
    ['', undefined],
    ['010.1.1.1', undefined],
    ['1.2.3.4:99999x', undefined],
    ['[1.2.3.4]', '1.2.3.4'],
    ['1.2.3.4, 5.6.7.8', undefined],
    ['unknown', undefined],
  ]
  for (const [raw, expected] of cases) t.equal(normaliseAddress(raw), expected, `${JSON.stringify(raw.slice(0, 24))} → ${String(expected)}`)
})

t.test('a forwarded value that is not an address falls back to the hop that sent it', async (t) => {
  t.equal(clientAddress({ ip: '198.51.100.7:1234' }), '198.51.100.7', 'a valid one is used, normalised')
  t.equal(clientAddress({ ip: 'garbage', ips: ['127.0.0.1', '10.0.0.5', 'garbage'] }), '10.0.0.5', 'the trusted proxy that wrote it')
  t.equal(clientAddress({ ip: 'garbage', ips: ['10.0.0.9', 'garbage'] }), '10.0.0.9', 'or the socket peer')
  t.equal(clientAddress({ ip: 'garbage', ips: [] }), 'unknown', 'no chain at all (cannot happen over a socket)')
  t.equal(clientAddress({ ip: undefined as unknown as string }), 'unknown', 'no address at all (a socket already gone)')
  t.equal(normaliseAddress(undefined), undefined)
  t.equal(normaliseAddress(123), undefined)
})

t.test('trusted proxies: each hop parsed like a client address before the allow-list decides', async (t) => {
  const trusted = trustedProxies(['10.0.0.0/24', '192.0.2.1', 'loopback', '2001:db8:1::/48'])
  const cases: Array<[string, boolean]> = [
    ['10.0.0.6', true],
    ['10.0.0.6:8080', true],
    ['[10.0.0.6]', true],
    ['::ffff:10.0.0.6', true],
    ['10.0.1.6', false],
    ['192.0.2.1', true],
    ['192.0.2.2', false],
    ['127.0.0.1', true],
    ['::1', true],
    ['[::1]:443', true],
    ['2001:db8:1:ff::5', true],
    ['2001:db8:2::5', false],
    ['garbage', false],
    ['', false],
  ]
  for (const [hop, expected] of cases) t.equal(trusted(hop), expected, `${hop}: ${expected ? 'trusted' : 'not trusted'}`)
  t.equal(trustedProxies(['uniquelocal'])('172.16.5.4'), true, 'named ranges: uniquelocal')
  t.equal(trustedProxies(['linklocal'])('fe80::1%eth0'), true, 'named ranges: linklocal, with a zone id')
})
