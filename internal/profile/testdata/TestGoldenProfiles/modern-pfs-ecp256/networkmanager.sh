#!/bin/sh
# NetworkManager-strongswan connection: IKEv2 VPN to vpn.example.com for jimp@example.com, from ikegate (gateway vpn/vpn).
# Needs the strongswan plugin of NetworkManager (network-manager-strongswan); run as root.
set -eu

mkdir -p '/etc/ikegate'
cat > '/etc/ikegate/vpn-vpn-ca.pem' <<'IKEGATE_CA'
-----BEGIN CERTIFICATE-----
MIIBmTCCAT+gAwIBAgIUc43wUG8ChKUpMY/w4eLuLImiMYgwCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOaWtlZ2F0ZSB2cG4gQ0EwIBcNMjYxMjAxMjI0MzQ5WhgPMjEy
NjExMDcyMjQzNDlaMBkxFzAVBgNVBAMMDmlrZWdhdGUgdnBuIENBMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEb5nRdQoPUrpU1vAWmQ+GoS0XDxQmMJPhk7kNock0
uZNFr3TnFz4hbk/oT3kBQBJpoM3XSOqjTwAPIABMbhuEKaNjMGEwHQYDVR0OBBYE
FFEuCarNhlF5d9GE7yNi6GWupuJcMB8GA1UdIwQYMBaAFFEuCarNhlF5d9GE7yNi
6GWupuJcMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMAoGCCqGSM49
BAMCA0gAMEUCIQCux5L+bw1cDTbBld+OvxR4gLRI0jlKsMUWH5KbJUSRUgIgTdmO
dpqQsWv864yDLROJFGJw5NxAzmqCdzorSDUnaOA=
-----END CERTIFICATE-----
IKEGATE_CA

nmcli connection delete uuid d0d8bf7c-a626-5dbd-8cfa-493148f6ac55 >/dev/null 2>&1 || true
nmcli connection add type vpn vpn-type strongswan \
    con-name 'vpn (vpn.example.com)' \
    connection.uuid d0d8bf7c-a626-5dbd-8cfa-493148f6ac55 \
    vpn.data 'address=vpn.example.com, certificate=/etc/ikegate/vpn-vpn-ca.pem, remote-identity=vpn.example.com, local-identity=jimp@example.com, method=eap, user=jimp@example.com, virtual=yes, encap=no, ipcomp=no, proposal=yes, ike=aes256gcm16-aes128gcm16-chacha20poly1305-prfsha256-prfsha384-prfsha512-x25519-ecp256-ecp384-ecp521-x448;aes256-aes128-sha256-sha384-sha512-prfsha256-prfsha384-prfsha512-x25519-ecp256-ecp384-ecp521;aes256gcm16-aes128gcm16-chacha20poly1305-prfsha256-prfsha384-prfsha512-modp4096-modp3072-modp2048;aes256-aes128-sha256-sha384-sha512-prfsha256-prfsha384-prfsha512-modp4096-modp3072-modp2048, esp=aes256gcm16-aes128gcm16-chacha20poly1305-ecp256;aes256-aes128-sha256-sha384-sha512-ecp256, remote-ts=10.3.0.0/24, password-flags=2' \
    ipv4.never-default yes \
    ipv6.never-default yes
echo 'Connection '\''vpn (vpn.example.com)'\'' is ready: nmcli connection up uuid d0d8bf7c-a626-5dbd-8cfa-493148f6ac55 --ask'
