# IKEv2 VPN to vpn.example.com for jimp@example.com, from ikegate (gateway vpn/vpn).
# Run in an elevated PowerShell: powershell -ExecutionPolicy Bypass -File <this file>
#Requires -RunAsAdministrator
$ErrorActionPreference = 'Stop'
$name = 'vpn (vpn.example.com)'

# The CA that issued the gateway's certificate.
$ca = Join-Path $env:TEMP 'ikegate-vpn-vpn-ca.cer'
[IO.File]::WriteAllBytes($ca, [Convert]::FromBase64String('MIIBmTCCAT+gAwIBAgIUc43wUG8ChKUpMY/w4eLuLImiMYgwCgYIKoZIzj0EAwIwGTEXMBUGA1UEAwwOaWtlZ2F0ZSB2cG4gQ0EwIBcNMjYxMjAxMjI0MzQ5WhgPMjEyNjExMDcyMjQzNDlaMBkxFzAVBgNVBAMMDmlrZWdhdGUgdnBuIENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEb5nRdQoPUrpU1vAWmQ+GoS0XDxQmMJPhk7kNock0uZNFr3TnFz4hbk/oT3kBQBJpoM3XSOqjTwAPIABMbhuEKaNjMGEwHQYDVR0OBBYEFFEuCarNhlF5d9GE7yNi6GWupuJcMB8GA1UdIwQYMBaAFFEuCarNhlF5d9GE7yNi6GWupuJcMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMAoGCCqGSM49BAMCA0gAMEUCIQCux5L+bw1cDTbBld+OvxR4gLRI0jlKsMUWH5KbJUSRUgIgTdmOdpqQsWv864yDLROJFGJw5NxAzmqCdzorSDUnaOA='))
Import-Certificate -FilePath $ca -CertStoreLocation 'Cert:\LocalMachine\Root' | Out-Null
Remove-Item $ca

if (Get-VpnConnection -AllUserConnection -Name $name -ErrorAction SilentlyContinue) {
    Remove-VpnConnection -AllUserConnection -Name $name -Force
}
$eap = New-EapConfiguration
Add-VpnConnection -AllUserConnection -Name $name `
    -ServerAddress 'vpn.example.com' `
    -TunnelType Ikev2 `
    -EncryptionLevel Required `
    -AuthenticationMethod Eap `
    -EapConfigXmlStream $eap.EapConfigXmlStream `
    -SplitTunneling:$true `
    -DnsSuffix 'example.com' `
    -RememberCredential `
    -Force
Add-VpnConnectionRoute -AllUserConnection -ConnectionName $name -DestinationPrefix '10.3.0.0/24'

# Proposes IKE aes256gcm16-prfsha256-ecp256 and ESP aes256gcm16-ecp256, which the gateway accepts.
Set-VpnConnectionIPsecConfiguration -AllUserConnection -ConnectionName $name `
    -EncryptionMethod GCMAES256 -IntegrityCheckMethod SHA256 -DHGroup ECP256 `
    -CipherTransformConstants GCMAES256 -AuthenticationTransformConstants GCMAES256 -PfsGroup ECP256 `
    -Force
Write-Host ('Connection {0} is ready; connect as {1}.' -f $name, 'jimp@example.com')
