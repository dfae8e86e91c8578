import t from 'tap'
import { clientAddress, normaliseAddress } from '../src/client-address.js'

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
})
